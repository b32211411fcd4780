#!/usr/bin/env node
// `npm test`: the type check (`npm run typecheck`), the format check (`npm run
// format:check`) and vitest's two projects, all at once. The projects run in vitest
// processes of their own, side by side: in one process they shared one set of workers, the
// `node` files first, and those mostly wait (a gateway booting, a minute-long job, a
// benchmark's settle), so for the first minutes the `workers` files, which compute, could
// not start. Each process has its own workers now: NODE_WORKERS node files at once (their
// waits overlap), and the workers project at vitest.config.ts's count. The checks take
// about 25 s of CPU beside them (at a lower priority they were left to run on one core
// after the tests). The `workers` output is shown as it comes; the `node` project's and the
// checks' once the tests are done. Arguments go to one vitest over both projects, as
// before (`npm test -- test/edge.test.ts`). Exit status 1 if any part failed.
import { spawn } from "node:child_process";

/**
 * Node files at once: the longest (README's quick start, about 100 s) is mostly waiting. Not
 * more: at 6 the timing-sensitive ones (revoke-kill, cost-smoke, usage-loss) failed under the
 * suite's own load in most fresh-clone runs; at 3 the node files passed in 196 s of suite.
 */
const NODE_WORKERS = 3;

/**
 * A command whose output is kept to be printed later.
 * @param {string} command
 * @param {string[]} args
 * @returns {Promise<{ name: string, ok: boolean, output: string }>}
 */
function quiet(command, args) {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const name = [command, ...args].join(" ");
  return new Promise((resolve) => {
    child.once("error", (err) => resolve({ name, ok: false, output: err.message }));
    child.once("close", (code) => resolve({ name, ok: code === 0, output }));
  });
}

/**
 * A command whose output goes straight to this one's.
 * @param {string} command
 * @param {string[]} args
 * @returns {Promise<boolean>}
 */
function shown(command, args) {
  const child = spawn(command, args, { stdio: "inherit" });
  return new Promise((resolve) => {
    child.once("error", () => resolve(false));
    child.once("close", (code) => resolve(code === 0));
  });
}

const checks = [quiet("npm", ["run", "--silent", "typecheck"]), quiet("npm", ["run", "--silent", "format:check"])];
const args = process.argv.slice(2);
let ok;
if (args.length > 0) {
  ok = await shown("npx", ["vitest", "run", ...args]);
} else {
  const node = quiet("npx", ["vitest", "run", "--project", "node", `--maxWorkers=${NODE_WORKERS}`]);
  const workersPassed = await shown("npx", ["vitest", "run", "--project", "workers"]);
  const nodeRun = await node;
  console.log(`\nvitest, project node:\n${nodeRun.output.trimEnd()}`);
  ok = workersPassed && nodeRun.ok;
}
for (const { name, ok: passed, output } of await Promise.all(checks)) {
  console.log(`\n${name.replace(/^npm run --silent /, "npm run ")}: ${passed ? "passed" : "FAILED"}`);
  if (output.trim()) console.log(output.trimEnd());
  ok &&= passed;
}
process.exit(ok ? 0 : 1);
