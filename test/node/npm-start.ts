import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../bench/free-port.mjs";

const root = new URL("../..", import.meta.url).pathname;

/**
 * `npm start` as a new engineer runs it, on free ports with its own local state: resolves
 * once its banner is printed. `output()` is everything it printed so far; `base` and
 * `adminToken` are read from the banner; `group` is the id of its process group (the
 * runtime, simulators and all); `exited` resolves with its exit code when it ends.
 */
export async function npmStart(env: Record<string, string> = {}) {
  const state = mkdtempSync(join(tmpdir(), "zgate-state-"));
  const port = await freePort();
  const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
  const inspectorPort = await freePort();
  let output = "";
  const child: ChildProcess = spawn("npm", ["start", "--silent"], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      ZGATE_SIM_PORTS: simPorts,
      ZGATE_INSPECTOR_PORT: String(inspectorPort),
      ZGATE_STATE_DIR: state,
      ADMIN_TOKEN: "",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const stop = async () => {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, "SIGTERM");
    } catch (err) {
      // Gone already (its exit not yet seen here): nothing left to stop.
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
    await new Promise((r) => setTimeout(r, 1000));
    rmSync(state, { recursive: true, force: true });
  };
  const deadline = Date.now() + 100_000;
  while (!output.includes("Stop with Ctrl-C.")) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`npm start did not come up:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    group: child.pid!,
    output: () => output,
    exited,
    base: /zgate listening on (\S+)/.exec(output)![1]!,
    adminToken: /admin token: (\S+)/.exec(output)![1]!,
    stop,
  };
}

/** A running `npm start`. */
export type NpmStart = Awaited<ReturnType<typeof npmStart>>;
