import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, noBrowser } from "./chromium";
import { freePort } from "../../bench/free-port.mjs";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;
if (noBrowser) console.warn("The /docs browser test is skipped: install the Debian package chromium to run it.");

const PNG = [137, 80, 78, 71, 13, 10, 26, 10];
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The first ```sh block after the heading `title` in README.md, as written there. */
function readmeBlock(title: string): string {
  const heading = new RegExp(`^#+ ${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m").exec(readme);
  if (!heading) throw new Error(`README.md has no heading "${title}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(heading.index));
  if (!block) throw new Error(`README.md has no sh block under "${title}"`);
  return block[1]!;
}

/**
 * README's quick start, for real: `npm start` on a port other than 8787 comes up, and
 * README's blocks and the "Try it" block it prints work as their comments say, run by
 * bash as a user would in a second terminal (same PORT and ZGATE_STATE_DIR, in a
 * directory of their own beside `examples/`). Its ZSky jobs take a minute, as the
 * reference's videos do, so the clients poll through a whole one. Then `npm start` is
 * stopped and started again on the same state directory, and at last its runtime is
 * killed: npm start must notice and exit.
 */
const JOB_MS = 60_000;
describe("npm start", () => {
  let child: ChildProcess;
  let output = "";
  let port = 8787;
  let env: NodeJS.ProcessEnv = {};
  const state = mkdtempSync(join(tmpdir(), "zgate-state-"));
  // The user's working directory: README's commands write their files here.
  const cwd = mkdtempSync(join(tmpdir(), "zgate-user-"));
  symlinkSync(join(root, "examples"), join(cwd, "examples"));
  // The user's temporary directory (TMPDIR): README's commands write their files in one `mktemp -d` makes there.
  const userTmp = join(cwd, "tmp");
  mkdirSync(userTmp);
  /** A file README's commands wrote, found by its name in the directories they made. */
  const written = (name: string) => {
    const found = readdirSync(userTmp)
      .map((dir) => join(userTmp, dir, name))
      .filter((path) => existsSync(path));
    expect(found, name).toHaveLength(1);
    return found[0]!;
  };

  async function start() {
    output = "";
    child = spawn("npm", ["start", "--silent"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const deadline = Date.now() + 100_000;
    while (!output.includes("Stop with Ctrl-C.")) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function stop() {
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(-child.pid!, "SIGTERM");
    await exited;
    // wrangler's workerd is in the same process group; wait until the port is free again.
    for (let i = 0; i < 100; i++) {
      if (
        !(await fetch(`http://127.0.0.1:${port}/`).then(
          () => true,
          () => false,
        ))
      )
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`port ${port} still answers after npm start stopped`);
  }

  /** Runs README commands in bash, in the user's directory, with the environment npm start was given. */
  const shell = (script: string, timeout = 30_000) => run("bash", ["-c", script], { cwd, env: { ...env, TMPDIR: userTmp }, timeout });

  beforeAll(async () => {
    while (port === 8787) port = await freePort();
    const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
    env = {
      ...process.env,
      PORT: String(port),
      ZGATE_SIM_PORTS: simPorts,
      ZGATE_STATE_DIR: state,
      ADMIN_TOKEN: "",
      ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS: String(JOB_MS),
    };
    await start();
  });

  afterAll(async () => {
    if (child?.pid && child.exitCode === null) await stop();
    rmSync(state, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  });

  it("README's two commands are `npm ci && npm start` and `npm ci && npm test`", () => {
    const commands = readmeBlock("Quick start")
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean);
    expect(commands).toEqual(["npm ci && npm start", "npm ci && npm test"]);
  });

  it("prints where it listens (PORT), an admin token and the state directory", () => {
    expect(output).toContain(`zgate listening on http://127.0.0.1:${port}`);
    expect(output).toMatch(/admin token: dev_admin_[0-9a-f]{32}/);
    expect(output).toContain(`state: ${state}`);
  });

  it("its banner names the API reference, the console and the health check, and / at the printed address names them too", async () => {
    const base = `http://127.0.0.1:${port}`;
    expect(output).toMatch(new RegExp(`API reference: +${base}/docs\n`));
    expect(output).toMatch(new RegExp(`security console: +${base}/admin/ `));
    expect(output).toMatch(new RegExp(`health check: +${base}/healthz\n`));
    const home = await fetch(`${base}/`);
    expect(home.status).toBe(200);
    expect(await home.json()).toMatchObject({ docs: `${base}/docs`, console: `${base}/admin/`, health: `${base}/healthz` });
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: "ok" });
  });

  it("README's ZakGT and ZappWay block: a zak_live_ key of usr_demo reads /users/me, a zw_live_ key lists agents", async () => {
    const { stdout } = await shell(readmeBlock("A key for ZakGT and ZappWay"));
    const [me, agents] = stdout.trim().split("\n");
    expect(JSON.parse(me!)).toMatchObject({ status: "ok", data: { id: "usr_demo", email: "demo@zakgt.test" } });
    expect(JSON.parse(agents!)).toMatchObject({ data: expect.arrayContaining([expect.objectContaining({ id: "agt_support" })]) });
  });

  it.concurrent(
    "README's end-to-end example: key, job followed by its poll_url, signed download, usage, revocation",
    async () => {
      const { stdout } = await shell(readmeBlock("One example, end to end"), JOB_MS + 30_000);
      const job = JSON.parse(readFileSync(written("job.json"), "utf8"));
      expect(job).toMatchObject({ status: "completed", kind: "image", expires_in: 86400 });
      expect(job.result_url).toMatch(
        new RegExp(`^http://127\\.0\\.0\\.1:${port}/zsky/v1/results/${job.job_id}\\?account=acct_demo&key=key_\\w+&expires=`),
      );
      expect([...readFileSync(written("lighthouse.png")).subarray(0, 8)]).toEqual(PNG);
      // curl prints bodies without a newline: the usage, the revoked key, then the refusal with its headers.
      const usage = /\{"videos_used"[^}]*\}/.exec(stdout)?.[0];
      expect(JSON.parse(usage!)).toMatchObject({ images_used: 1, base_images_allowance: 1000 });
      expect(stdout.slice(stdout.indexOf(usage!) + usage!.length)).toMatch(/^\{"id":"key_\w+".*"status":"revoked".*\}HTTP\/1\.1 401/);
      expect(stdout.trimEnd()).toMatch(/\{"error":"Invalid API key"\}$/);
    },
    JOB_MS + 40_000,
  );

  it.concurrent(
    "README's sample-client block: ZSky's own Python client polls a minute-long job every 2 s to the end and downloads it",
    async () => {
      // The client is the reference's own, line for line: test/node/sample-client.test.ts.
      const started = Date.now();
      // About 30 polls in the minute, more than ZSky's burst of 20: polls have their own window.
      const { stdout } = await shell(readmeBlock("ZSky's own sample client"), JOB_MS + 30_000);
      expect(Date.now() - started).toBeGreaterThanOrEqual(JOB_MS);
      expect(stdout).toMatch(
        new RegExp(
          `^Result: http://127\\.0\\.0\\.1:${port}/zsky/v1/results/\\w+\\?account=acct_sample&key=key_\\w+&expires=\\d+&kid=\\w+&sig=[0-9a-f]{64}`,
        ),
      );
      expect([...readFileSync(written("out.webp")).subarray(0, 8)]).toEqual(PNG);
    },
    JOB_MS + 40_000,
  );

  it.skipIf(noBrowser)(
    "/docs renders the three products' operations in a real headless Chromium under its CSP (no violation), Try it out aimed at this PORT (screenshot in test-results/)",
    async () => {
      const base = `http://127.0.0.1:${port}`;
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 2000 } });
        // Every console message of the page: a CSP violation is reported there.
        const messages: string[] = [];
        page.on("console", (m) => messages.push(m.text()));
        page.on("pageerror", (e) => messages.push(e.message));
        const response = await page.goto(`${base}/docs`);
        expect(response!.headers()["content-security-policy"]).toMatch(/script-src 'self'.*frame-ancestors 'none'/);
        await page.waitForSelector(".opblock", { timeout: 30_000 });
        // Past about 145 operations Swagger UI renders only those near the viewport: read them scrolling down.
        const paths = new Set<string>();
        const tags = new Set<string | null>();
        for (let i = 0; i < 500; i++) {
          const seen = await page.evaluate(() => ({
            paths: [...document.querySelectorAll(".opblock-summary-path")].map((n) => n.getAttribute("data-path") ?? n.textContent ?? ""),
            tags: [...document.querySelectorAll(".opblock-tag")].map((n) => n.getAttribute("data-tag")),
            atEnd: window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2,
          }));
          seen.paths.forEach((path) => paths.add(path));
          seen.tags.forEach((tag) => tags.add(tag));
          if (seen.atEnd) break;
          await page.mouse.wheel(0, 1000);
          await new Promise((r) => setTimeout(r, 100));
        }
        await page.evaluate(() => window.scrollTo(0, 0));
        for (const expected of [
          "/zakgt/api/v1/users/me",
          "/zsky/v1/images/generate",
          "/zappway/api/v1/agents",
          "/zappway/api/v1/agents/{agentId}/query",
          "/zappway/api/v1/agents/{path}",
          "/admin/v1/keys",
        ]) {
          expect([...paths]).toContain(expected);
        }
        expect([...tags]).toEqual(expect.arrayContaining(["zakgt", "zsky", "zappway", "admin", "security"]));
        const servers = await page.$$eval(".servers option", (nodes) => nodes.map((n) => (n as HTMLOptionElement).value));
        expect(servers).toEqual([base]);
        expect(messages.filter((m) => /Content Security Policy|Refused to/i.test(m))).toEqual([]);
        mkdirSync(join(root, "test-results"), { recursive: true });
        const shot = join(root, "test-results", "docs.png");
        await page.screenshot({ path: shot });
        expect(statSync(shot).size).toBeGreaterThan(10_000);
      } finally {
        await browser.close();
      }
    },
  );

  it("the printed curl commands work as described", async () => {
    const block = output.slice(output.indexOf("Try it:"), output.indexOf("Stop with Ctrl-C."));
    const commands = block
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#") && l !== "Try it:");
    expect(commands.length).toBeGreaterThanOrEqual(4);
    // One shell, so the TOKEN from the first command reaches the others; a marker splits the outputs.
    const script = commands.map((c) => `${c}\necho; echo ===`).join("\n");
    const { stdout } = await shell(script);
    const [loginOut, me, noToken, zsky] = stdout.split("===\n").map((s) => s.trim());
    expect(loginOut).toBe("");
    expect(JSON.parse(me!).data.email).toBe("demo@zakgt.test");
    expect(noToken).toMatch(/^HTTP\/1\.1 401/);
    expect(noToken).toContain('{"detail":"Not authenticated"}');
    expect(zsky).toMatch(/^HTTP\/1\.1 401/);
    expect(zsky).toContain('{"error":"Missing API key"}');
  });

  it("README's Leaked key runbook, top to bottom: each step shows what the README says, in well under five minutes", async () => {
    const started = Date.now();
    const { stdout } = await shell(readmeBlock("Leaked key runbook"), 60_000);
    expect(Date.now() - started).toBeLessThan(60_000);
    // One line per step, after the drill's (which print nothing).
    const [found, usage, rolled, leaked, status, audit] = stdout.trim().split("\n");
    const key = JSON.parse(found!);
    expect(key).toMatchObject({ account: "acct_drill", label: "ci deploy", status: "active" });
    expect(key.last_used_at).not.toBeNull();
    const calls = JSON.parse(usage!);
    expect(calls.calls).toContainEqual(expect.objectContaining({ user_agent: "stranger/1.0", outcome: "admitted" }));
    expect(calls.addresses.length).toBeGreaterThanOrEqual(1);
    const successor = JSON.parse(rolled!);
    expect(successor).toMatchObject({ replaces: key.id, label: "ci deploy", status: "active" });
    expect(successor.key).toMatch(/^zsky_live_[0-9A-Za-z]{36}$/);
    expect(JSON.parse(leaked!)).toMatchObject({
      id: key.id,
      status: "revoked",
      revoked: [{ id: key.id, why: "leaked" }],
      kept: [{ id: successor.id, why: "rolled_by_admin" }],
    });
    expect(status).toBe("401");
    const entries = JSON.parse(audit!).entries.map((e: { actor: string; action: string; detail: Record<string, unknown> }) => ({
      actor: e.actor,
      action: e.action,
      reason: e.detail?.reason,
      ticket: e.detail?.ticket,
    }));
    expect(entries).toEqual(
      expect.arrayContaining([
        { actor: "admin:token", action: "key.revoke_leaked", reason: "pushed to a public repo", ticket: "SEC-1" },
        { actor: "admin:token", action: "key.roll", reason: "leaked", ticket: "SEC-1" },
      ]),
    );
    // The customer's successor works.
    expect((await fetch(`http://127.0.0.1:${port}/zsky/v1/usage`, { headers: { "X-API-Key": successor.key } })).status).toBe(200);
  });

  it("every sh block of README is run here but the deploy one (it needs Cloudflare), and none wrote a file where it ran", () => {
    const headings = [...readme.matchAll(/```sh\n/g)].map((block) => [...readme.slice(0, block.index).matchAll(/^#+ (.+)$/gm)].pop()![1]);
    expect(headings).toEqual([
      "Quick start",
      "One example, end to end",
      "A key for ZakGT and ZappWay",
      "ZSky's own sample client",
      "Deploy",
      "Leaked key runbook",
    ]);
    expect(readdirSync(cwd).sort()).toEqual(["examples", "tmp"]);
  });

  it("restarted on the same state directory: same admin token, an old result link downloads, an old completed job polls", async () => {
    const adminBefore = /admin token: (\S+)/.exec(output)![1]!;
    const job = JSON.parse(readFileSync(written("job.json"), "utf8"));
    // The first start applied every migration and said so: this one runs no `wrangler d1 migrations apply`.
    const migrations = readdirSync(join(root, "migrations"))
      .filter((f) => f.endsWith(".sql"))
      .sort();
    expect(readFileSync(join(state, "zgate-migrations-applied.txt"), "utf8")).toBe(migrations.map((f) => `${f}\n`).join(""));
    await stop();
    await start();
    const base = `http://127.0.0.1:${port}`;
    expect(/admin token: (\S+)/.exec(output)![1]).toBe(adminBefore);

    // The link was signed before the restart.
    const download = await fetch(job.result_url);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(readFileSync(written("lighthouse.png")))).toBe(true);

    // The example revoked its key; another key of the same account polls the job it ran.
    const created = await fetch(`${base}/admin/v1/keys`, {
      method: "POST",
      headers: { Authorization: `Bearer ${adminBefore}`, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zsky", account: "acct_demo" }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    const polled = await fetch(`${base}/zsky/v1/jobs/${job.job_id}`, { headers: { "X-API-Key": key } });
    expect(polled.status).toBe(200);
    const done = (await polled.json()) as { status: string; result_url: string };
    expect(done.status).toBe("completed");
    expect((await fetch(done.result_url)).status).toBe(200);
  });

  // The last test: it ends npm start.
  it("when its runtime dies, npm start stops everything and exits non-zero naming it, rather than hold a port that answers nothing", async () => {
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const group = child.pid!;
    // The workerd running the Worker, not the one holding the port: with it gone, the port still accepts and never answers.
    const worker = execFileSync("ps", ["-o", "pid=,args=", "-g", String(group)], { encoding: "utf8" })
      .split("\n")
      .filter((line) => /\bworkerd serve\b/.test(line) && !line.includes(`entry=127.0.0.1:${port}`))
      .map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(worker).toHaveLength(1);
    process.kill(worker[0]!, "SIGKILL");
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("still running"), 30_000))]);
    expect(code).not.toBe("still running");
    expect(code).not.toBe(0);
    expect(output).toContain(`npm start: the runtime died: workerd (pid ${worker[0]}) under wrangler dev exited`);
    // Nothing of it is left: no process of its group, the port closed.
    const left = () => spawnSync("ps", ["-o", "pid=", "-g", String(group)], { encoding: "utf8" }).stdout.trim();
    for (const deadline = Date.now() + 10_000; left() !== "" && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 250));
    expect(left()).toBe("");
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});

describe("npm start with a damaged state directory", () => {
  const startWith = async (files: Record<string, string>) => {
    const state = mkdtempSync(join(tmpdir(), "zgate-state-"));
    try {
      for (const [name, text] of Object.entries(files)) writeFileSync(join(state, name), text);
      const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
      const env = { ...process.env, PORT: String(await freePort()), ZGATE_SIM_PORTS: simPorts, ZGATE_STATE_DIR: state, ADMIN_TOKEN: "" };
      const failed = await run("node", [join(root, "scripts", "start.mjs")], { cwd: root, env, timeout: 60_000 }).then(
        () => null,
        (err: { code: number; stderr: string }) => err,
      );
      return { failed, secrets: readFileSync(join(state, "zgate-dev-secrets.env"), "utf8") };
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  };

  it("a malformed dev secret stops the start, naming the file and the secret, and is left as it was", async () => {
    const damaged = "ADMIN_TOKEN=short\nORIGIN_ASSERTION_KEY=" + "a".repeat(43) + "\n";
    const { failed, secrets } = await startWith({ "zgate-dev-secrets.env": damaged });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain("zgate-dev-secrets.env: ADMIN_TOKEN is not what npm start writes");
    expect(failed?.stderr).toContain("delete the file for new dev secrets");
    expect(secrets).toBe(damaged);
  });

  it("a simulated-jobs file that is not one stops the start, saying how to get past it", async () => {
    const { failed } = await startWith({ "zsky-simulator-jobs.json": "{not json" });
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/zsky-simulator-jobs\.json is not a list of simulated ZSky jobs: delete it to start with none/);
  });
});
