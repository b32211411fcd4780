// The runtime `wrangler dev` runs, watched for `npm start`: wrangler does not notice when
// one of its workerd processes dies (killed, out of memory). It keeps running while its
// port refuses connections (the entry process died) or holds every request unanswered
// (the process running the Worker died), so npm start would look alive and serve nothing.
import { execFileSync } from "node:child_process";
import { basename } from "node:path";

/** A reload replaces the Worker's workerd in milliseconds; a runtime one process short for this long is dead. */
const GRACE_MS = 5000;

/** The workerd processes under `root` (its children, theirs, ...), by pid, read from `ps`. */
function runtimeProcesses(root) {
  const children = new Map();
  const workerd = new Set();
  for (const line of execFileSync("ps", ["-A", "-o", "pid=,ppid=,comm="], { encoding: "utf8" }).trim().split("\n")) {
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
 */
export function watchRuntime(wranglerPid, died) {
  let seen = runtimeProcesses(wranglerPid);
  const expected = seen.size;
  let shortSince;
  const timer = setInterval(() => {
    const now = runtimeProcesses(wranglerPid);
    if (now.size >= expected) {
      seen = now;
      shortSince = undefined;
      return;
    }
    shortSince ??= Date.now();
    if (Date.now() - shortSince < GRACE_MS) return;
    clearInterval(timer);
    const gone = [...seen].filter((pid) => !now.has(pid));
    seen = now;
    const which = gone.length > 0 ? `workerd (pid ${gone.join(", ")})` : "a workerd process";
    died(`the runtime died: ${which} under wrangler dev exited, and wrangler did not replace it`);
  }, 1000);
  timer.unref();
  return { lastSeen: () => seen, stop: () => clearInterval(timer) };
}
