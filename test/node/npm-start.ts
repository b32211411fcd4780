import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./free-port";

const root = new URL("../..", import.meta.url).pathname;

export interface NpmStart {
  /** Where the gateway listens, from its banner. */
  base: string;
  /** Everything it printed so far. */
  output: () => string;
  stop: () => Promise<void>;
}

/** `npm start` on free ports with a state directory of its own, once its banner is printed. */
export async function npmStart(env: Record<string, string>): Promise<NpmStart> {
  const state = mkdtempSync(join(tmpdir(), "zgate-state-"));
  const port = await freePort();
  const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
  const child: ChildProcess = spawn("npm", ["start", "--silent"], {
    cwd: root,
    env: { ...process.env, PORT: String(port), ZGATE_SIM_PORTS: simPorts, ZGATE_STATE_DIR: state, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const stop = async () => {
    if (child.pid) process.kill(-child.pid, "SIGTERM");
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
  return { base: /zgate listening on (\S+)/.exec(output)![1]!, output: () => output, stop };
}
