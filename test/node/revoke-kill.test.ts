import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { npmStart, type NpmStart } from "./npm-start";

/**
 * A revoke is applied by the key's guard first (that makes it instant), then recorded in
 * D1 and the audit log. Here the runtime is killed (kill -9) while revokes are under way,
 * and `npm start` is started again on the same state directory: every key must end up
 * with the same verdict at the edge and in the admin API, and every key the edge refuses
 * must have its `key.revoke` audit entry (the guard's outbox delivers what the killed
 * calls could not). A round whose kill cut no revoke after its guard applied it proves
 * nothing, so rounds are repeated (new keys each time) until one does.
 */
const KEYS = 28;
const ROUNDS = 4;

interface Verdict {
  id: string;
  edge: number;
  admin: string;
  audited: number;
  /** Its audit entry was written by the guard's outbox: the call that revoked it was killed after the guard applied it. */
  byGuard: boolean;
}

describe("revoking keys while the runtime is killed", () => {
  const state = mkdtempSync(join(tmpdir(), "zgate-kill-"));
  let gateway: NpmStart | undefined;
  afterAll(async () => {
    await gateway?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  const admin = (gw: NpmStart, path: string, method = "GET", body?: unknown) =>
    fetch(`${gw.base}/admin/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${gw.adminToken}`, "Content-Type": "application/json" },
      body: method === "POST" ? JSON.stringify(body ?? {}) : undefined,
    });
  const edge = (gw: NpmStart, key: string) =>
    fetch(`${gw.base}/zappway/api/v1/agents`, { headers: { Authorization: `Bearer ${key}` } }).then((r) => r.status);
  /** The runtime's processes (workerd) in npm start's process group. */
  const runtimeOf = (gw: NpmStart) =>
    execFileSync("ps", ["-o", "pid=,comm=", "-g", String(gw.group)], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.includes("workerd"))
      .map((line) => Number(line.trim().split(/\s+/)[0]));

  /** Revokes every key while each is busy, kills the runtime as the first revoke returns, and starts npm start again. */
  async function killMidRevoke(round: number): Promise<{ id: string; key: string }[]> {
    const gw = gateway!;
    const keys: { id: string; key: string }[] = [];
    for (let i = 0; i < KEYS; i++) {
      const created = await admin(gw, "/keys", "POST", { product: "zappway", account: `acct_kill_${round}_${i}`, plan: "pro" });
      expect(created.status).toBe(201);
      keys.push((await created.json()) as { id: string; key: string });
    }
    // Every key busy: the gateway holds a lease for it, so its revoke waits for the lease
    // to end after the guard applied it (that wait is where the kill lands).
    let busy = true;
    const traffic = keys.map(async ({ key }) => {
      while (busy && (await edge(gw, key).catch(() => 0)) === 200);
    });
    await new Promise((r) => setTimeout(r, 500));
    const runtime = runtimeOf(gw);
    expect(runtime.length).toBeGreaterThan(0);
    const revokes = keys.map(({ id }) =>
      admin(gw, `/keys/${id}/revoke`, "POST").then(
        (r) => r.status,
        () => "killed",
      ),
    );
    await Promise.race(revokes);
    for (const pid of runtime) process.kill(pid, "SIGKILL");
    await Promise.all(revokes);
    busy = false;
    await Promise.all(traffic);
    await gw.stop();
    gateway = await npmStart({ ZGATE_STATE_DIR: state });
    return keys;
  }

  async function verdicts(keys: { id: string; key: string }[]): Promise<Verdict[]> {
    const gw = gateway!;
    return Promise.all(
      keys.map(async ({ id, key }) => {
        // D1's view first, then the edge's (which wakes the key's guard).
        const record = (await (await admin(gw, `/keys/${id}`)).json()) as { status: string };
        const audit = (await (await admin(gw, `/audit?target=${id}&action=key.revoke`)).json()) as {
          entries: { detail: { completed_by?: string } | null }[];
        };
        const byGuard = audit.entries.some((e) => e.detail?.completed_by === "guard");
        return { id, admin: record.status, audited: audit.entries.length, byGuard, edge: await edge(gw, key) };
      }),
    );
  }
  const agrees = (v: Verdict) =>
    v.edge === 200 ? v.admin === "active" && v.audited === 0 : v.edge === 401 && v.admin === "revoked" && v.audited === 1;

  it("after a restart, the admin API agrees with the edge on every key, and each refused key has its audit entry", async () => {
    gateway = await npmStart({ ZGATE_STATE_DIR: state });
    let interrupted = 0;
    for (let round = 0; round < ROUNDS && interrupted === 0; round++) {
      const keys = await killMidRevoke(round);
      let seen = await verdicts(keys);
      for (let deadline = Date.now() + 60_000; !seen.every(agrees) && Date.now() < deadline; seen = await verdicts(keys)) {
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(seen.filter((v) => !agrees(v))).toEqual([]);
      // Revokes the guard applied that the killed calls never recorded: the case in point.
      interrupted = seen.filter((v) => v.byGuard).length;
    }
    expect(interrupted).toBeGreaterThan(0);
  }, 480_000);

  it("when its runtime dies, npm start stops everything and exits non-zero naming it, rather than hold a port that answers nothing", async () => {
    gateway ??= await npmStart({ ZGATE_STATE_DIR: state });
    const gw = gateway;
    // The workerd running the Worker, not the one holding the port: with it gone, the port still accepts and never answers.
    const worker = execFileSync("ps", ["-o", "pid=,args=", "-g", String(gw.group)], { encoding: "utf8" })
      .split("\n")
      .filter((line) => /\bworkerd serve\b/.test(line) && !line.includes(`entry=${new URL(gw.base).host}`))
      .map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(worker).toHaveLength(1);
    process.kill(worker[0]!, "SIGKILL");
    const code = await Promise.race([gw.exited, new Promise((r) => setTimeout(() => r("still running"), 30_000))]);
    expect(code).not.toBe("still running");
    expect(code).not.toBe(0);
    expect(gw.output()).toContain(`npm start: the runtime died: workerd (pid ${worker[0]}) under wrangler dev exited`);
    // Nothing of it is left: no process of its group, the port closed.
    const left = () => spawnSync("ps", ["-o", "pid=", "-g", String(gw.group)], { encoding: "utf8" }).stdout.trim();
    for (const deadline = Date.now() + 10_000; left() !== "" && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 250));
    expect(left()).toBe("");
    await expect(fetch(gw.base)).rejects.toThrow();
  }, 150_000);
});
