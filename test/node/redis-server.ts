import { spawn } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../bench/free-port.mjs";
import { RespClient } from "./resp-client";

export interface RunningRedis {
  port: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/** A throwaway `redis-server` on a free loopback port, with persistence off. */
export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const collect = (chunk: Buffer) => (output += chunk.toString());
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);

  try {
    await once(child, "spawn");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("redis-server is not on PATH: install the Debian package `redis-server` (apt-get install redis-server)", {
        cause: error,
      });
    }
    throw error;
  }

  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answersPing(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not answer PING:\n${output}`);
    }
    await sleep(50);
  }
  return { port, stop };
}

async function answersPing(port: number): Promise<boolean> {
  try {
    const client = await RespClient.connect(port);
    try {
      return (await client.send(["PING"])) === "PONG";
    } finally {
      await client.close();
    }
  } catch {
    return false; // not listening yet
  }
}
