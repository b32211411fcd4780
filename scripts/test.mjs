#!/usr/bin/env node
// `npm test`: the type check (`npm run typecheck`) and the format check (`npm run
// format:check`) run beside `vitest run` (both projects), not before it: on 2 cores they
// take about 45 s of CPU, which the suite's waits (a minute-long job, gateways booting)
// leave room for. They share the cores with it from the start (at a lower priority they
// were left to run on one core after it), and their output is printed once vitest is
// done. Arguments go to vitest (`npm test -- test/edge.test.ts`). Exit status 1 if any of
// the three failed.
import { spawn } from "node:child_process";

/**
 * `npm run --silent <script>`, its output kept.
 * @param {string} script
 * @returns {Promise<{ script: string, ok: boolean, output: string }>}
 */
function check(script) {
  const child = spawn("npm", ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return new Promise((resolve) => {
    child.once("error", (err) => resolve({ script, ok: false, output: err.message }));
    child.once("close", (code) => resolve({ script, ok: code === 0, output }));
  });
}

const checks = [check("typecheck"), check("format:check")];
const vitest = spawn("npx", ["vitest", "run", ...process.argv.slice(2)], { stdio: "inherit" });
const testsPassed = await new Promise((resolve) => {
  vitest.once("error", () => resolve(false));
  vitest.once("close", (code) => resolve(code === 0));
});
let ok = testsPassed;
for (const { script, ok: passed, output } of await Promise.all(checks)) {
  console.log(`\nnpm run ${script}: ${passed ? "passed" : "FAILED"}`);
  if (output.trim()) console.log(output.trimEnd());
  ok &&= passed;
}
process.exit(ok ? 0 : 1);
