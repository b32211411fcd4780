#!/usr/bin/env node
// `npm run bench:suite [-- <files>]`: runs `npm test` (with the arguments given, as
// `npm test -- <files>`) and says where its CPU went, by kind of process. On 2 cores the
// suite keeps both busy from start to end, so its length is its CPU divided by two, and
// cutting it means cutting CPU: this shows which processes spend it (a runtime's boot is
// a wrangler, an esbuild and a workerd; a browser test a Chromium; the workers project its
// workerds and vitest's main process, which also serves the origin simulators).
//
// Every 500 ms it reads each process's CPU time (/proc/<pid>/stat) and adds what it spent
// since the last read to its kind; a process that lives less than a read apart, or the
// time one spent after the last read before it exited, is missed, so the kinds add up to
// a little less than the machine's busy time (/proc/stat), which is printed beside them.
// Run it on an otherwise idle machine: the machine's figure counts every process.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const PERIOD_MS = 500;
const TICKS_PER_SECOND = 100;

/** @type {[string, RegExp][]} Kinds of process, by their command line: the first whose pattern matches. */
const KINDS = [
  ["workerd", /\/workerd /],
  ["chromium", /chromium/],
  ["esbuild", /esbuild --service/],
  ["wrangler", /wrangler/],
  ["vitest", /vitest/],
  ["tsc", /\btsc\b/],
  ["prettier", /prettier/],
  ["bench scripts", /\/bench\/\S+\.mjs/],
  ["npm start", /scripts\/start\.mjs/],
  ["other scripts", /\/scripts\/\S+\.mjs/],
  ["python", /python/],
  ["redis-server", /redis-server/],
];

/** @param {string} command */
const kindOf = (command) => KINDS.find(([, pattern]) => pattern.test(command))?.[0] ?? "other";

/** The machine's busy CPU ticks so far (user, nice, system, irq, softirq). */
function machineBusy() {
  const [, user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = readFileSync("/proc/stat", "utf8")
    .split(" ")
    .filter(Boolean)
    .map(Number);
  return user + nice + system + irq + softirq;
}

/** Command lines by pid and start time: read once, as a process starts (most of the reads' cost). */
const commands = new Map();

/** @returns {Map<string, { ticks: number, command: string }>} by pid and start time */
function processes() {
  const found = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // utime, stime; starttime tells a reused pid apart.
      const id = `${pid}/${fields[19]}`;
      let command = commands.get(id);
      if (command === undefined) commands.set(id, (command = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()));
      if (command) found.set(id, { ticks: Number(fields[11]) + Number(fields[12]), command });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return found;
}

/** @type {Map<string, number>} */
const byKind = new Map();
/** @type {Map<string, { ticks: number, count: number }>} */
const byCommand = new Map();
// Processes running before the suite count only what they spend from now on.
const seen = new Map([...processes()].map(([id, p]) => [id, p.ticks]));
const sample = () => {
  for (const [id, { ticks, command }] of processes()) {
    const before = seen.get(id);
    seen.set(id, ticks);
    const spent = ticks - (before ?? 0);
    if (spent === 0 && before !== undefined) continue;
    const kind = kindOf(command);
    byKind.set(kind, (byKind.get(kind) ?? 0) + spent);
    // Ports and temporary paths differ from one run of a command to the next.
    const name = `${kind}: ${command
      .replace(/\/tmp\/\S+/g, "<tmp>")
      .replace(/\d{4,}/g, "<n>")
      .slice(0, 110)}`;
    const entry = byCommand.get(name) ?? { ticks: 0, count: 0 };
    entry.ticks += spent;
    if (before === undefined) entry.count++;
    byCommand.set(name, entry);
  }
};

const busyBefore = machineBusy();
const started = Date.now();
const timer = setInterval(sample, PERIOD_MS);
const child = spawn("npm", ["test", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])], { stdio: "inherit" });
const code = await new Promise((resolve) => child.once("close", resolve));
clearInterval(timer);
sample();
const wallSeconds = (Date.now() - started) / 1000;
const busySeconds = (machineBusy() - busyBefore) / TICKS_PER_SECOND;

const seconds = (/** @type {number} */ ticks) => (ticks / TICKS_PER_SECOND).toFixed(1).padStart(7);
console.log(
  `\nnpm test: ${code === 0 ? "passed" : "FAILED"}, ${wallSeconds.toFixed(0)} s; the machine busy ${busySeconds.toFixed(0)} s of CPU`,
);
console.log("\nCPU s   by kind of process");
for (const [kind, ticks] of [...byKind].sort((a, b) => b[1] - a[1])) if (ticks > 0) console.log(`${seconds(ticks)}  ${kind}`);
console.log("\nCPU s  runs  by command (the 25 that spent most)");
for (const [name, { ticks, count }] of [...byCommand]
  .filter(([, c]) => c.ticks > 0)
  .sort((a, b) => b[1].ticks - a[1].ticks)
  .slice(0, 25))
  console.log(`${seconds(ticks)} ${String(count).padStart(5)}  ${name}`);
process.exit(typeof code === "number" ? code : 1);
