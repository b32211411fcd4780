import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./free-port";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

/**
 * README's quick start, for real: `npm start` comes up and every curl command it prints
 * in its "Try it" block works as the comments beside it say.
 */
describe("npm start", () => {
  let child: ChildProcess;
  let output = "";
  const state = mkdtempSync(join(tmpdir(), "zgate-state-"));

  beforeAll(async () => {
    const port = await freePort();
    const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
    child = spawn("npm", ["start", "--silent"], {
      cwd: root,
      env: { ...process.env, PORT: String(port), ZGATE_SIM_PORTS: simPorts, ZGATE_STATE_DIR: state, ADMIN_TOKEN: "" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const deadline = Date.now() + 100_000;
    while (!output.includes("Stop with Ctrl-C.")) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not come up:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    if (child?.pid) process.kill(-child.pid, "SIGTERM");
    await new Promise((r) => setTimeout(r, 1000));
    rmSync(state, { recursive: true, force: true });
  });

  it("prints where it listens and an admin token", () => {
    expect(output).toMatch(/zgate listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/admin token: dev_admin_[0-9a-f]{32}/);
  });

  it("the printed curl commands work as described", async () => {
    const block = output.slice(output.indexOf("Try it:"), output.indexOf("Stop with Ctrl-C."));
    const commands = block.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#") && l !== "Try it:");
    expect(commands.length).toBeGreaterThanOrEqual(4);
    // One shell, so the TOKEN from the first command reaches the others; a marker splits the outputs.
    const script = commands.map((c) => `${c}\necho; echo ===`).join("\n");
    const { stdout } = await run("bash", ["-c", script], { timeout: 30_000 });
    const [loginOut, me, noToken, zsky] = stdout.split("===\n").map((s) => s.trim());
    expect(loginOut).toBe("");
    expect(JSON.parse(me!).data.email).toBe("demo@zakgt.test");
    expect(noToken).toMatch(/^HTTP\/1\.1 401/);
    expect(noToken).toContain('{"detail":"Not authenticated"}');
    expect(zsky).toMatch(/^HTTP\/1\.1 401/);
    expect(zsky).toContain('{"error":"Missing API key"}');
  });
});
