import { afterAll, describe, expect, it } from "vitest";
import { restartableGateway, runtimeOf, type DevGateway } from "./dev-gateway";

/**
 * A revoke is applied by the key's guard first (that makes it instant), then recorded in
 * D1 and the audit log. Here the runtime (workerd, with wrangler dev's bindings and
 * settings: test/node/gateway-runtime.mjs) is killed (kill -9) while revokes are under
 * way, and started again on the same state directory: every key must end up with the same
 * verdict at the edge and in the admin API, and every key the edge refuses must have its
 * `key.revoke` audit entry (the guard's outbox delivers what the killed calls could not).
 * A kill that cut no revoke after its guard applied it proves nothing, so rounds are
 * repeated (new keys each time) until one does.
 */
const KEYS = 28;
// Alone a round catches 5-25 of 28; rounds are cheap, and a round that caught none is repeated.
const ROUNDS = 6;
/** The lease life (MAX_LEASE_MS): a revoke waits up to this long after its guard applied it. */
const LEASE_MS = 1000;
/** Requests each key makes before the revokes: its lease then covers several. */
const WARM_REQUESTS = 20;

interface Verdict {
  id: string;
  edge: number;
  admin: string;
  audited: number;
  /** Its audit entry was written by the guard's outbox: the call that revoked it was killed after the guard applied it. */
  byGuard: boolean;
}

describe("revoking keys while the runtime is killed", () => {
  const kept = restartableGateway({ GUARD_LEASE_MS: String(LEASE_MS) });
  let gateway: DevGateway | undefined;
  afterAll(() => kept.close());
  /** The gateway on its kept state: a restart after the first. */
  const start = async () => {
    gateway = await kept.start();
  };

  const admin = (gw: DevGateway, path: string, method = "GET", body?: unknown) =>
    fetch(`${gw.base}/admin/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${gw.adminToken}`, "Content-Type": "application/json" },
      body: method === "POST" ? JSON.stringify(body ?? {}) : undefined,
    });
  const edge = (gw: DevGateway, key: string) =>
    fetch(`${gw.base}/zappway/api/v1/agents`, { headers: { Authorization: `Bearer ${key}` } }).then((r) => r.status);
  /**
   * Revokes every key at once while each is busy, kills the runtime as the first revoke
   * returns, and starts the gateway again.
   */
  async function killMidRevoke(round: number): Promise<{ id: string; key: string }[]> {
    const gw = gateway!;
    // One after another: 28 creations at once on a loaded machine outlasted a dependency's
    // budget (503) in a fresh-clone npm test; making the keys is not what is tested here.
    const keys: { id: string; key: string }[] = [];
    for (let i = 0; i < KEYS; i++) {
      const created = await admin(gw, "/keys", "POST", { product: "zappway", account: `acct_kill_${round}_${i}`, plan: "pro" });
      expect(created.status).toBe(201);
      keys.push((await created.json()) as { id: string; key: string });
    }
    // Every key busy: the gateway holds a lease for it, so its revoke waits for the lease
    // to end after the guard applied it, and is recorded only then. The keys start one
    // after another over a lease life, so their leases end at different moments: when the
    // first revoke returns (its lease ended) the others applied by then are still waiting.
    // (Started together, their leases ended together, and so did every revoke: a kill at
    // the first return, or at the edge's first 401, which comes after it, cut none.)
    const runtime = runtimeOf(gw);
    expect(runtime.length).toBeGreaterThan(0);
    let killed = false;
    const kill = () => {
      if (!killed) for (const pid of runtime) process.kill(pid, "SIGKILL");
      killed = true;
    };
    const served = keys.map(() => 0);
    const traffic = keys.map(async ({ key }, i) => {
      await new Promise((r) => setTimeout(r, (i * LEASE_MS) / KEYS));
      // A key stops at its revoke (401) or the kill (no answer); anything else (a 503 when
      // a dependency outlasted its budget on a loaded machine) is not what is tested here.
      for (let status = 200; !killed && status !== 401 && status !== 0;) {
        status = await edge(gw, key).catch(() => 0);
        if (status === 200) served[i]!++;
      }
    });
    // A lease needs requests coming faster than one a lease life: under a full npm test's
    // load the first requests of 28 new keys (their guards' births) took a second each, and
    // revokes sent 1.5 s in found no lease to wait for. So each key makes WARM_REQUESTS first.
    for (const deadline = Date.now() + 60_000; served.some((n) => n < WARM_REQUESTS) && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(served.filter((n) => n < WARM_REQUESTS)).toEqual([]);
    // All at once: sent one after another, most had not reached their guard when the first returned.
    await Promise.all(keys.map(({ id }) => admin(gw, `/keys/${id}/revoke`, "POST").then(kill, () => "killed")));
    await Promise.all(traffic);
    await start(); // stops what is left of the killed one first
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
    await start();
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
      console.log(`round ${round + 1}: ${interrupted} revokes of ${KEYS} recorded by the guard's outbox after the kill`);
    }
    expect(interrupted).toBeGreaterThan(0);
  }, 480_000);
});
