// Builds the Workers under test and serves each one with workerd through Miniflare's
// API, all the same way: one Miniflare instance (so one workerd process) per Worker,
// on loopback, the compatibility date and flags from wrangler.toml, request logging
// off, and the Worker's console output drained instead of printed (zgate writes one
// access-log line per request; printing them would measure the terminal).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";

export const root = new URL("..", import.meta.url).pathname;
const benchDir = new URL(".", import.meta.url).pathname;

/**
 * One Worker served by its own Miniflare instance (one workerd process): its URL, its
 * direct socket past the entry worker (when asked for), and the workerd processes it spawned.
 * @typedef {{
 *   name: string,
 *   mf: Miniflare,
 *   url: string,
 *   directUrl: string | null,
 *   pids: number[],
 *   output: ReturnType<typeof outputTail>,
 *   stop: () => Promise<void>,
 * }} Instance
 */
/** @typedef {ReturnType<typeof readCompatibility>} Compatibility */
/** @typedef {import("miniflare").MiniflareOptions} MiniflareOptions */

/** compatibility_date / compatibility_flags from the top level of wrangler.toml. */
export function readCompatibility() {
  const text = readFileSync(join(root, "wrangler.toml"), "utf8");
  // Only the top level (before the first [section]) describes the local Worker.
  const [top = ""] = text.split(/^\[/m);
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(top)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(top)?.[1];
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  return {
    compatibilityDate: date,
    compatibilityFlags: flags ? [...flags.matchAll(/"([^"]+)"/g)].map((m) => /** @type {string} */ (m[1])) : [],
  };
}

/**
 * Bundles an entry the way wrangler does for workerd (ESM, worker/browser conditions);
 * packages that the entry's own tree lacks are found in this one's node_modules.
 * @param {string} entry
 * @param {string} outfile
 */
async function bundle(entry, outfile) {
  await build({
    entryPoints: [entry],
    outfile,
    nodePaths: [join(root, "node_modules")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2024",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*"],
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
  return outfile;
}

/**
 * zgate alone, bundled as the benches bundle it (test/node/gateway-runtime.mjs serves it to the node tests).
 * @param {string} workDir
 */
export function buildZgate(workDir) {
  return bundle(join(root, "src", "index.ts"), join(workDir, "zgate.mjs"));
}

/**
 * zgate, the contract floor (contract-floor.mjs), and the two bench-only scripts that measure its AccountGuard on its own.
 * @param {string} workDir
 */
export async function buildAll(workDir) {
  const bare = join(workDir, "bare.mjs");
  writeFileSync(bare, BARE_WORKER);
  const [zgate, floor, guardHost, guardDriver] = await Promise.all([
    buildZgate(workDir),
    bundle(join(benchDir, "contract-floor.mjs"), join(workDir, "contract-floor.mjs")),
    bundle(join(benchDir, "guard-host.mjs"), join(workDir, "guard-host.mjs")),
    bundle(join(benchDir, "guard-driver.mjs"), join(workDir, "guard-driver.mjs")),
  ]);
  return { bare, zgate, floor, guardHost, guardDriver };
}

/**
 * A git ref's files that make a zgate and its floor (`src/`, `bench/`, `migrations/`),
 * unpacked into `dir` for buildTree (bench:ab and bench:instructions measure this tree against it).
 * @param {string} ref
 * @param {string} dir
 */
export function checkOutRef(ref, dir) {
  mkdirSync(dir, { recursive: true });
  const tar = execFileSync("git", ["-C", root, "archive", "--format=tar", ref, "src", "bench", "migrations"], {
    maxBuffer: 256 * 1024 * 1024,
  });
  execFileSync("tar", ["-x", "-C", dir], { input: tar });
}

/**
 * zgate and its contract floor from another source tree (bench/ab.mjs: a git ref's files),
 * bundled with this tree's packages.
 * @param {string} sourceRoot
 * @param {string} workDir
 */
export async function buildTree(sourceRoot, workDir) {
  const [zgate, floor] = await Promise.all([
    bundle(join(sourceRoot, "src", "index.ts"), join(workDir, "zgate.mjs")),
    bundle(join(sourceRoot, "bench", "contract-floor.mjs"), join(workDir, "contract-floor.mjs")),
  ]);
  return { zgate, floor };
}

/**
 * The bare Worker and zgate with counted bindings (bench/cost-worker.mjs), for `npm run bench:cost`.
 * @param {string} workDir
 */
export async function buildCost(workDir) {
  const bare = join(workDir, "bare.mjs");
  writeFileSync(bare, BARE_WORKER);
  return { bare, counted: await bundle(join(benchDir, "cost-worker.mjs"), join(workDir, "cost-worker.mjs")) };
}

/**
 * zgate behind guard stubs that wait a round trip (bench/distance-worker.mjs), for `npm run bench:distance`.
 * @param {string} workDir
 */
export function buildDistance(workDir) {
  return bundle(join(benchDir, "distance-worker.mjs"), join(workDir, "distance-worker.mjs"));
}

/**
 * zgate with its objects' calls counted per object and per second (bench/scale-worker.mjs), for `npm run bench:scale`.
 * @param {string} workDir
 */
export function buildScale(workDir) {
  return bundle(join(benchDir, "scale-worker.mjs"), join(workDir, "scale-worker.mjs"));
}

// The baseline: fetch the origin and return its response, nothing else.
export const BARE_WORKER = `export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN + url.pathname + url.search, request);
  },
};
`;

/**
 * A worker's code: one bundled ES module (its directory is the modules root, so
 * workerd never sees a path that climbs out of it), named as the one module it is:
 * given a script path with `modules: true`, Miniflare parses the whole bundle in Node
 * (acorn) to find what it imports, about 1.2 s of CPU for zgate's at every start.
 * @param {string} scriptPath
 * @returns {Pick<import("miniflare").WorkerOptions, "modules" | "modulesRoot">}
 */
export const bundledScript = (scriptPath) => ({ modules: [{ type: "ESModule", path: scriptPath }], modulesRoot: dirname(scriptPath) });

/**
 * Where the local KV/D1/R2/Durable Object data lives. workerd runs SQLite (the guard's
 * storage, and Miniflare's KV and D1 simulators) synchronously on its one request
 * thread, so on a disk every commit's fsync stalls all requests; production storage
 * does not. A tmpfs (/dev/shm) keeps that artefact out of the figures; "disk" puts it back.
 * @param {"tmpfs" | "disk"} kind
 */
export function storageRoot(kind) {
  if (kind === "tmpfs" && existsSync("/dev/shm")) return mkdtempSync(join("/dev/shm", "zgate-bench-"));
  return mkdtempSync(join(tmpdir(), "zgate-bench-storage-"));
}

/**
 * Miniflare options every instance shares.
 * @param {string} name
 * @param {ReturnType<typeof outputTail>} stdio
 * @param {string} storage
 */
function shared(name, stdio, storage) {
  return {
    host: "127.0.0.1",
    port: 0,
    logRequests: false,
    handleRuntimeStdio: stdio.attach,
    defaultPersistRoot: join(storage, name),
  };
}

/** Keeps the last few KB of a workerd's output for error reports; drops the rest. */
export function outputTail(limit = 8192) {
  let tail = "";
  const keep = (/** @type {Buffer | string} */ chunk) => {
    tail = (tail + chunk).slice(-limit);
  };
  return {
    /**
     * @param {import("node:stream").Readable} stdout
     * @param {import("node:stream").Readable} stderr
     */
    attach(stdout, stderr) {
      stdout.on("data", keep);
      stderr.on("data", keep);
    },
    get text() {
      return tail;
    },
  };
}

// The instance starting now, if any: instances start one at a time, so that the new
// workerd descendant each one finds is its own (bench:cost starts default_key_1rps's runs side by side).
/** @type {Promise<unknown>} */
let starting = Promise.resolve();

/**
 * Starts one Miniflare instance and resolves its URL and the workerd process it spawned
 * (found as the new workerd descendant of this process, for the CPU and memory figures),
 * once every instance asked for before it has started.
 * @param {string} name
 * @param {string} storage
 * @param {MiniflareOptions} options
 * @returns {Promise<Instance>}
 */
function startInstance(name, storage, options) {
  const started = starting.then(() => launchInstance(name, storage, options));
  starting = started.catch(() => {});
  return started;
}

/**
 * @param {string} name
 * @param {string} storage
 * @param {MiniflareOptions} options
 * @returns {Promise<Instance>}
 */
async function launchInstance(name, storage, options) {
  const before = new Set(workerdPids());
  const stdio = outputTail();
  const mf = new Miniflare({ ...shared(name, stdio, storage), ...options });
  let url;
  try {
    url = await mf.ready;
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw new Error(`${name}: Miniflare did not start: ${err instanceof Error ? err.message : err}\n${stdio.text}`);
  }
  const pids = workerdPids().filter((pid) => !before.has(pid));
  // The user Worker's own socket, when asked for (see `direct` below).
  const directUrl = options.unsafeDirectSockets ? (await mf.unsafeGetDirectURL()).origin : null;
  return { name, mf, url: url.origin, directUrl, pids, output: stdio, stop: () => mf.dispose() };
}

/**
 * A second socket straight to the user Worker, past Miniflare's entry worker (which
 * otherwise handles every request first, in the same workerd: its fixed cost is on
 * both sides of a ratio and flatters it). Not a proxy socket: plain HTTP, as in production.
 */
const direct = { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] };

/**
 * A Worker with plain bindings and no storage of its own, with its direct socket.
 * @param {string} name
 * @param {{ scriptPath: string, compat: Compatibility, storage: string, bindings: Record<string, string>, inspectorPort?: number }} worker
 */
function startPlain(name, { scriptPath, compat, storage, bindings, inspectorPort }) {
  return startInstance(name, storage, {
    ...(inspectorPort ? { inspectorPort } : {}),
    ...bundledScript(scriptPath),
    ...compat,
    ...direct,
    bindings,
  });
}

/**
 * The baseline: a Worker that only passes each request on to the origin.
 * @param {{ scriptPath: string, originUrl: string, compat: Compatibility, storage: string }} worker
 */
export function startBare({ scriptPath, originUrl, compat, storage }) {
  return startPlain("bare", { scriptPath, compat, storage, bindings: { ORIGIN: originUrl } });
}

/**
 * The contract floor, served like the bare Worker; `assertionKeys` (ORIGIN_ASSERTION_KEYS) sign its origin assertions; `inspectorPort` as startZgate's.
 * @param {{ scriptPath: string, originUrl: string, assertionKeys: string, compat: Compatibility, storage: string, name?: string, inspectorPort?: number }} worker
 */
export function startContractFloor({ scriptPath, originUrl, assertionKeys, compat, storage, name = "floor", inspectorPort }) {
  return startPlain(name, {
    scriptPath,
    compat,
    storage,
    inspectorPort,
    bindings: { ORIGIN: originUrl, ORIGIN_ASSERTION_KEYS: assertionKeys },
  });
}

/**
 * zgate with its bindings, on local storage (under `storage`/`name`); `inspectorPort`: workerd's V8 inspector on that port (bench/profile.mjs).
 * @param {{ scriptPath: string, settings: Record<string, string>, compat: Compatibility, storage: string, inspectorPort?: number, name?: string }} worker
 */
export function startZgate({ scriptPath, settings, compat, storage, inspectorPort, name = "zgate" }) {
  return startInstance(name, storage, {
    ...(inspectorPort ? { inspectorPort } : {}),
    ...bundledScript(scriptPath),
    ...compat,
    ...direct,
    bindings: settings,
    ...ZGATE_STORAGE,
    durableObjects: ZGATE_OBJECTS,
  });
}

/** zgate's KV namespace, D1 database and R2 bucket: every zgate Worker of one Miniflare shares them. */
const ZGATE_STORAGE = {
  kvNamespaces: { KEYS_KV: "zgate-keys-local" },
  d1Databases: { DB: "00000000-0000-4000-8000-000000000000" },
  r2Buckets: { RESULTS: "zgate-results" },
};

/** zgate's Durable Object classes, by binding: its guards and its usage logs. */
const ZGATE_OBJECTS = {
  ACCOUNT_GUARD: { className: "AccountGuard", useSQLite: true },
  USAGE_LOG: { className: "UsageLog", useSQLite: true },
  USAGE_ADDRESSES: { className: "UsageAddressIndex", useSQLite: true },
};

/** The Worker that hosts the Durable Objects of startZgateIsolates(). */
const GUARD_HOST = "guard-host";

/**
 * zgate in several isolates of one workerd, as Cloudflare runs it in many at once: each
 * isolate a Worker of its own running `scriptPath` with `settings` and its own extra
 * `bindings`, on its own direct socket (`urls`, by name; send `CF-Connecting-IP`, as
 * Cloudflare's edge does), all on one KV namespace, D1 database and R2 bucket and bound
 * to one guard namespace (and one of each usage log class). The objects live in a further
 * Worker of the same script (the script must export zgate's Durable Object classes), so
 * every isolate reaches them as it would objects elsewhere; it has a direct socket too
 * (`guardHostUrl`: the bench routes of its script). The entry URL (`url`) serves the first isolate.
 * @param {{
 *   scriptPath: string,
 *   settings: Record<string, string>,
 *   compat: ReturnType<typeof readCompatibility>,
 *   storage: string,
 *   isolates: { name: string, bindings?: Record<string, string> }[],
 * }} options
 */
export async function startZgateIsolates({ scriptPath, settings, compat, storage, isolates }) {
  const code = { ...bundledScript(scriptPath), ...compat, ...ZGATE_STORAGE };
  const instance = await startInstance("zgate-isolates", storage, {
    workers: [
      ...isolates.map(({ name, bindings = {} }) => ({
        name,
        ...code,
        ...direct,
        bindings: { ...settings, ...bindings },
        durableObjects: Object.fromEntries(
          Object.entries(ZGATE_OBJECTS).map(([binding, object]) => [binding, { ...object, scriptName: GUARD_HOST }]),
        ),
      })),
      { name: GUARD_HOST, ...code, ...direct, bindings: settings, durableObjects: ZGATE_OBJECTS },
    ],
  });
  /** @type {Record<string, string>} */
  const urls = {};
  for (const { name } of isolates) urls[name] = (await instance.mf.unsafeGetDirectURL(name)).origin;
  return { ...instance, urls, guardHostUrl: (await instance.mf.unsafeGetDirectURL(GUARD_HOST)).origin };
}

/**
 * The guard on its own: a host script that only exports zgate's AccountGuard class, and
 * a driver script (a separate isolate, like zgate's fetch handler is from a remote
 * object in production) that calls `admit` on it in a loop. Both bind zgate's D1
 * database, which an account guard reads its keys from when it is first called
 * (src/keys/guard-birth.ts): apply the migrations (applyMigrations) before driving it.
 * @param {{ hostPath: string, driverPath: string, compat: Compatibility, storage: string }} worker
 */
export function startGuardBench({ hostPath, driverPath, compat, storage }) {
  return startInstance("guard", storage, {
    workers: [
      {
        name: "driver",
        ...bundledScript(driverPath),
        ...compat,
        d1Databases: ZGATE_STORAGE.d1Databases,
        durableObjects: { GUARD: { className: "AccountGuard", scriptName: "guard-host", useSQLite: true } },
      },
      {
        name: "guard-host",
        ...bundledScript(hostPath),
        ...compat,
        d1Databases: ZGATE_STORAGE.d1Databases,
        durableObjects: { GUARD: { className: "AccountGuard", useSQLite: true } },
      },
    ],
  });
}

/**
 * Applies migrations/*.sql (this tree's, or those in `dir`), in name order, to the instance's D1 database.
 * @param {Miniflare} mf
 * @param {string} [dir]
 */
export async function applyMigrations(mf, dir = join(root, "migrations")) {
  const db = await mf.getD1Database("DB");
  const statements = readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((file) => sqlStatements(readFileSync(join(dir, file), "utf8")));
  // One exec (one statement a line), not a prepare() per statement: a proxy's prepare() is a
  // synchronous call into Miniflare (its SynchronousFetcher), which under a loaded suite once
  // woke without its answer ("AssertionError: false == true" in cost-smoke's start).
  await db.exec(statements.map((statement) => statement.replace(/\s*\n\s*/g, " ")).join("\n"));
}

/**
 * Splits a migration file into statements: comments dropped, split on `;` at line ends.
 * @param {string} text
 */
function sqlStatements(text) {
  return text
    .split("\n")
    .map((line) => line.replace(/--.*$/, ""))
    .join("\n")
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

// ---------------------------------------------------------------- processes and memory

/** Pids of every workerd process descended from this one (Miniflare spawns them). */
export function workerdPids() {
  /** @type {Map<number, { pid: number, comm: string }[]>} */
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command name: state, ppid, ...
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const siblings = children.get(ppid) ?? [];
      siblings.push({ pid: Number(entry), comm });
      children.set(ppid, siblings);
    } catch {
      // The process exited while we looked.
    }
  }
  /** @type {number[]} */
  const found = [];
  const walk = (/** @type {number} */ pid) => {
    for (const child of children.get(pid) ?? []) {
      if (child.comm === "workerd") found.push(child.pid);
      walk(child.pid);
    }
  };
  walk(process.pid);
  return found;
}

/**
 * Peak and current resident memory of a process, in MiB (null once it is gone).
 * @param {number} pid
 */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (/** @type {string} */ field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
    return { peakMiB: kb("VmHWM") / 1024, rssMiB: kb("VmRSS") / 1024 };
  } catch {
    return null;
  }
}

// Clock ticks per second of /proc/<pid>/stat times: USER_HZ, 100 on every Linux port that matters.
const CLOCK_TICKS = 100;

/**
 * CPU time (user + system) an instance's workerd processes have used so far, in ms.
 * @param {Pick<Instance, "pids">} instance
 */
export function cpuTimeMs(instance) {
  let ticks = 0;
  for (const pid of instance.pids) {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/**
 * CPU time an instance's workerd processes have used so far, in ns: every thread's time on
 * a CPU (/proc/<pid>/task/<tid>/schedstat), far finer than the 10 ms ticks of cpuTimeMs,
 * for windows of a few seconds (cpu-together.mjs).
 * @param {Pick<Instance, "pids">} instance
 */
export function cpuTimeNs(instance) {
  let ns = 0;
  for (const pid of instance.pids) {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // The thread ended while we looked: its time is no longer counted, as it was not before.
      }
    }
  }
  return ns;
}

/**
 * Sum of the peaks of an instance's workerd processes (usually exactly one).
 * @param {Pick<Instance, "pids">} instance
 */
export function peakOf(instance) {
  const figures = instance.pids.map(memoryOf).filter((m) => m !== null);
  return figures.length ? figures.reduce((sum, m) => sum + m.peakMiB, 0) : null;
}
