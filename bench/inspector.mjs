// A Chrome DevTools Protocol session on an isolate of workerd, through its V8 inspector:
// bench/profile.mjs's CPU profiles, and bench/memory.mjs's reading of the JS heap.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import WebSocket from "ws";

/** @typedef {{ title: string, url?: string, webSocketDebuggerUrl: string }} InspectorTarget One of /json's entries. */

/**
 * A Chrome DevTools Protocol session on the inspector at `port`: the target named `name`
 * (the Worker's), or the first one listed; `onEvent` is told each event the target sends
 * (a heap snapshot's chunks, bench/in-flight.mjs).
 * @param {number} port
 * @param {string} [name]
 * @param {(method: string, params: any) => void} [onEvent]
 */
export async function inspect(port, name = "zgate", onEvent) {
  const targets = /** @type {InspectorTarget[]} */ (await (await fetch(`http://127.0.0.1:${port}/json`)).json());
  const target = targets.find((t) => t.title === name || t.title.endsWith(`:${name}`) || t.url?.includes(name)) ?? targets[0];
  if (!target) throw new Error(`the inspector on port ${port} lists no target`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once("open", () => resolve(undefined)).once("error", reject));
  let id = 0;
  /** @type {Map<number, (msg: { result?: unknown, error?: { message: string } }) => void>} */
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    if (!msg.id && msg.method) onEvent?.(msg.method, msg.params);
    const answer = msg.id ? pending.get(msg.id) : undefined;
    if (answer) {
      answer(msg);
      pending.delete(msg.id);
    }
  });
  /** @type {(method: string, params?: object) => Promise<unknown>} */
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const n = ++id;
      pending.set(n, (msg) => (msg.error ? reject(new Error(`${method}: ${msg.error.message}`)) : resolve(msg.result)));
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return { send, close: () => ws.close(), title: target.title };
}

/**
 * The TCP ports process `pid` listens on (its sockets' inodes matched against /proc/net/tcp*):
 * `wrangler dev` gives its runtime's inspector a port of the kernel's choosing and prints none.
 * @param {number} pid
 */
function listeningPorts(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  /** @type {number[]} */
  const ports = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").trim().split("\n").slice(1)) {
      // local address "hex:port", state 0A is LISTEN, inode is field 9.
      const [, local = "", , state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === "0A" && inodes.has(inode)) ports.push(parseInt(local.split(":")[1] ?? "", 16));
    }
  }
  return ports;
}

/**
 * The port of the V8 inspector of workerd process `pid`: the one of its listening ports
 * that answers /json with a list of targets; null when none does. Its first session to
 * `name` is opened and closed before the port is returned (openFirstSession).
 * @param {number} pid
 * @param {string} name
 */
export async function inspectorPort(pid, name) {
  for (const port of listeningPorts(pid)) {
    try {
      const answer = await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(1000) });
      if (!answer.ok || !Array.isArray(await answer.json())) continue;
    } catch {
      continue; // not an inspector
    }
    await openFirstSession(port, name);
    return port;
  }
  return null;
}

/**
 * The first session opened to an isolate is answered nothing (workerd 1.20260426): one is
 * opened to `name` on the inspector at `port` and closed, so that later ones are answered.
 * @param {number} port
 * @param {string} name
 */
export async function openFirstSession(port, name) {
  const first = await inspect(port, name);
  await Promise.race([first.send("Runtime.getHeapUsage"), new Promise((r) => setTimeout(r, 1000))]);
  first.close();
}

/**
 * workerd runs some inspector commands (a garbage collection) only when a
 * request enters the isolate: `poke` sends one, every 200 ms until `command` is answered.
 * @param {Promise<unknown>} command
 * @param {() => Promise<unknown>} poke
 */
export async function whilePoked(command, poke) {
  let answered = false;
  const done = command.finally(() => (answered = true));
  for (const deadline = Date.now() + 20_000; !answered;) {
    if (Date.now() > deadline) throw new Error("the isolate did not run the inspector's command within 20 s");
    await poke().catch(() => {});
    await Promise.race([done, new Promise((r) => setTimeout(r, 200))]);
  }
  return done;
}

/**
 * The JS heap of the isolate `name` on the inspector at `port` right after a full garbage
 * collection (MB): what its live objects hold, apart from V8's and the runtime's own
 * reserves. `poke` sends the isolate a request (see whilePoked).
 * @param {number} port
 * @param {string} name
 * @param {() => Promise<unknown>} poke
 */
export async function heapAfterGc(port, name, poke) {
  const session = await inspect(port, name);
  try {
    await whilePoked(session.send("HeapProfiler.collectGarbage"), poke);
    const { usedSize, totalSize } = /** @type {{ usedSize: number, totalSize: number }} */ (await session.send("Runtime.getHeapUsage"));
    return { usedMb: usedSize / 2 ** 20, totalMb: totalSize / 2 ** 20, target: session.title };
  } finally {
    session.close();
  }
}
