// What every bench script shares: numeric settings from the environment, and stopping
// everything it started (workerd processes, the origin, temporary directories) however
// it ends: normally, on an error, on SIGINT/SIGTERM, or at process exit.
import { rmSync } from "node:fs";

/**
 * A positive number from the environment; `smokeValue` when unset in a smoke run, else `fallback`.
 * @param {string} name
 * @param {number} fallback
 * @param {number} smokeValue
 * @param {boolean} smoke
 */
export function setting(name, fallback, smokeValue, smoke) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return smoke ? smokeValue : fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** @typedef {() => unknown} Stop How to stop something started, synchronously or not. */

// Everything started is registered here and stopped in reverse order, whatever happens.
/** @type {(() => Promise<void>)[]} */
const running = [];
// Pids and directories still to get rid of, for the synchronous last resort below.
/** @type {Set<number>} */
const livePids = new Set();
/** @type {Set<string>} */
const liveDirs = new Set();

/**
 * Registers something started: how to stop it, and the processes / directory it owns.
 * Returns its stop, to stop it early (once: cleanup will not stop it again).
 * @param {Stop} stop
 * @param {{ pids?: number[], dir?: string }} [owns]
 * @returns {() => Promise<void>}
 */
export function track(stop, { pids = [], dir } = {}) {
  pids.forEach((pid) => livePids.add(pid));
  if (dir) liveDirs.add(dir);
  /** @type {Promise<void> | undefined} */
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
/** @type {Promise<unknown> | undefined} */
let building;
/**
 * Marks a build in progress (cleanup waits for it); returns it.
 * @template T
 * @param {Promise<T>} promise
 * @returns {Promise<T>}
 */
export function whileBuilding(promise) {
  building = promise;
  return promise;
}

/** @type {Promise<void> | undefined} */
let cleaning;
/** Stops everything tracked, newest first (each given 5 s); the same promise however often it is called. */
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

/**
 * Runs a bench's `main`, then stops everything it started; on an error, or past 30
 * minutes (a stuck run must not hang CI), says so, stops everything and exits 1.
 * @param {string} name e.g. "bench:scale"
 * @param {() => Promise<void>} main
 */
export async function runBench(name, main) {
  const watchdog = setTimeout(async () => {
    console.error(`${name} took over 30 minutes; stopping`);
    await cleanup();
    process.exit(1);
  }, 30 * 60_000);
  watchdog.unref();
  try {
    await main();
    await cleanup();
  } catch (err) {
    console.error(`${name} failed: ${err instanceof Error ? (err.stack ?? err) : err}`);
    await cleanup();
    process.exit(1);
  }
}
