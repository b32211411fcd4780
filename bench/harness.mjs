// What every bench script shares: numeric settings from the environment, and stopping
// everything it started (workerd processes, the origin, temporary directories) however
// it ends: normally, on an error, on SIGINT/SIGTERM, or at process exit.
import { rmSync } from "node:fs";

/** A positive number from the environment; `smokeValue` when unset in a smoke run, else `fallback`. */
export function setting(name, fallback, smokeValue, smoke) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return smoke ? smokeValue : fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

// Everything started is registered here and stopped in reverse order, whatever happens.
const running = [];
// Pids and directories still to get rid of, for the synchronous last resort below.
const livePids = new Set();
const liveDirs = new Set();

/**
 * Registers something started: how to stop it, and the processes / directory it owns.
 * Returns its stop, to stop it early (once: cleanup will not stop it again).
 */
export function track(stop, { pids = [], dir } = {}) {
  pids.forEach((pid) => livePids.add(pid));
  if (dir) liveDirs.add(dir);
  let stopping;
  const stopOnce = () =>
    (stopping ??= (async () => {
      try {
        await stop();
      } finally {
        pids.forEach((pid) => livePids.delete(pid));
        if (dir) liveDirs.delete(dir);
      }
    })());
  running.push(stopOnce);
  return stopOnce;
}

// The bundles being written, if any: removing their directory under esbuild's feet
// would only have it recreated.
let building;
/** Marks a build in progress (cleanup waits for it); returns it. */
export function whileBuilding(promise) {
  building = promise;
  return promise;
}

let cleaning;
export function cleanup() {
  cleaning ??= (async () => {
    await building?.catch(() => {});
    for (const stop of running.reverse()) {
      await Promise.race([
        Promise.resolve()
          .then(stop)
          .catch(() => {}),
        new Promise((r) => setTimeout(r, 5000)),
      ]);
    }
  })();
  return cleaning;
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping everything...`);
    await cleanup();
    process.exit(130);
  });
}
// Miniflare installs its own SIGINT/SIGTERM hooks, which call process.exit() straight
// away, so the async cleanup above may not get to finish: whatever is still running
// when the process exits is killed here, synchronously, by pid.
process.on("exit", () => {
  for (const pid of livePids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});
