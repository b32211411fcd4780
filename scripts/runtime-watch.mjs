// The runtime `wrangler dev` runs, watched for `npm start`: wrangler does not notice when
// one of its workerd processes dies (killed, out of memory). It keeps running while its
// port refuses connections (the entry process died) or holds every request unanswered
// (the process running the Worker died), so npm start would look alive and serve nothing.
import { execFile } from "node:child_process";
import { basename } from "node:path";
import { promisify } from "node:util";

/** A reload replaces the Worker's workerd in milliseconds; a runtime one process short for this long is dead. */
const GRACE_MS = 5000;
const CHECK_MS = 1000;

/**
 * The workerd processes under `root` (its children, theirs, ...), by pid, read from `ps` (without blocking the simulators).
 * @param {number} root
 * @returns {Promise<Set<number>>}
 */
export async function runtimeProcesses(root) {
  const { stdout } = await promisify(execFile)("ps", ["-A", "-o", "pid=,ppid=,comm="], { encoding: "utf8" });
  const children = new Map();
  const workerd = new Set();
  for (const line of stdout.trim().split("\n")) {
    const [pid, ppid, ...command] = line.trim().split(/\s+/);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    if (basename(command.join(" ")) === "workerd") workerd.add(pid);
  }
  const found = new Set();
  for (const pending = [String(root)]; pending.length > 0;) {
    for (const child of children.get(pending.pop()) ?? []) {
      if (workerd.has(child)) found.add(Number(child));
      pending.push(child);
    }
  }
  return found;
}

/**
 * Checks every second that as many workerd processes run under `wranglerPid` as when the
 * watch began (once the gateway answered), and calls `died(message)` once when fewer have
 * run for GRACE_MS, naming the ones that went. `lastSeen()` is the runtime's processes at
 * the last check: a runtime whose wrangler died first is no longer under it.
 * @param {number} wranglerPid
 * @param {(message: string) => void} died
 */
export async function watchRuntime(wranglerPid, died) {
  let seen = await runtimeProcesses(wranglerPid);
  const expected = seen.size;
  /** @type {number | undefined} */
  let shortSince;
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  let stopped = false;
  const check = async () => {
    // A ps that failed (a fork refused under load) tells nothing: the next check asks again.
    const now = await runtimeProcesses(wranglerPid).catch(() => null);
    if (stopped) return;
    if (now && now.size >= expected) {
      seen = now;
      shortSince = undefined;
    } else if (now && Date.now() - (shortSince ??= Date.now()) >= GRACE_MS) {
      const gone = [...seen].filter((pid) => !now.has(pid));
      seen = now;
      const which = gone.length > 0 ? `workerd (pid ${gone.join(", ")})` : "a workerd process";
      return died(`the runtime died: ${which} under wrangler dev exited, and wrangler did not replace it`);
    }
    timer = setTimeout(check, CHECK_MS).unref();
  };
  timer = setTimeout(check, CHECK_MS).unref();
  return {
    lastSeen: () => seen,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
