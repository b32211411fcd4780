// Churn against a running gateway (zgate under npm start, or the bare control), and the
// memory of the runtime serving it, for `npm run bench:memory` (bench/memory.mjs).
// Churn is what an abuser makes without end: every request from a client address never
// seen before, with a made-up key of the right shape (its checksum holds, so zgate looks
// it up), to each of the three products in turn.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { importTs, root } from "../scripts/import-ts.mjs";
import { runtimeProcesses } from "../scripts/runtime-watch.mjs";
import { freePort } from "./free-port.mjs";
import { inspectorPort } from "./inspector.mjs";
import { startOrigin } from "./origin.mjs";
import { BARE_WORKER, readCompatibility } from "./workers.mjs";

/** @typedef {typeof import("../src/keys/key-format")} KeyFormat */
// Its types as importers see them: churn.d.mts, which every export here satisfies.
/** @typedef {typeof import("./churn.mjs")} Declared */
/** @typedef {import("./churn.mjs").ChurnRequest} ChurnRequest */
/** @typedef {import("./churn.mjs").Sample} Sample */

/** @type {Declared["GROWTH_LIMIT_MB"]} */
export const GROWTH_LIMIT_MB = 10;
/** @type {Declared["RUNTIME_CEILING_MB"]} */
export const RUNTIME_CEILING_MB = 640;

/**
 * One authenticated route per product, and how its credential is presented.
 * @type {{ prefix: string, path: string, header: (key: string) => Record<string, string> }[]}
 */
const PRODUCTS = [
  { prefix: "zsky_live_", path: "/zsky/v1/usage", header: (key) => ({ "X-API-Key": key }) },
  { prefix: "zw_live_", path: "/zappway/api/v1/agents", header: (key) => ({ Authorization: `Bearer ${key}` }) },
  { prefix: "zak_live_", path: "/zakgt/api/v1/users/me", header: (key) => ({ Authorization: `Bearer ${key}` }) },
];

/**
 * Starts `command` in a process group of its own and resolves once `ready(output)`: where
 * it listens, the pid above its runtime, and how to stop it (its whole group, then `dir`).
 * @param {{ what: string, command: string[], env: Record<string, string | undefined>, port: number, dir: string, ready: (output: string) => boolean }} run
 */
async function launch({ what, command, env, port, dir, ready }) {
  const [bin = "", ...args] = command;
  const child = spawn(bin, args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const pid = /** @type {number} a spawned process has one */ (child.pid);
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-pid, "SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (const deadline = Date.now() + 120_000; !ready(output);) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`${what} did not come up:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base: `http://127.0.0.1:${port}`, port, pid, output: () => output, stop };
}

/**
 * `npm start` (scripts/start.mjs) on free ports with a state directory of its own, once
 * its banner is printed, with its admin token.
 * @type {Declared["startGateway"]}
 */
export const startGateway = async () => {
  const state = mkdtempSync(join(tmpdir(), "zgate-memory-"));
  const port = await freePort();
  const simPorts = [await freePort(), await freePort(), await freePort()].join(",");
  const gateway = await launch({
    what: "npm start",
    command: [process.execPath, join(root, "scripts", "start.mjs")],
    env: { PORT: String(port), ZGATE_SIM_PORTS: simPorts, ZGATE_STATE_DIR: state, ADMIN_TOKEN: "" },
    port,
    dir: state,
    ready: (output) => output.includes("Stop with Ctrl-C."),
  });
  const adminToken = /** @type {string} */ (/admin token: (\S+)/.exec(gateway.output())?.[1]);
  return { ...gateway, name: "zgate", adminToken };
};

/**
 * The control: `wrangler dev` as npm start runs it (the same wrangler and workerd, the
 * compatibility date and flags of wrangler.toml, zgate's static assets), but running a
 * Worker that only passes each request on to bench/origin.mjs (a process of its own), with
 * no bindings. What its runtime grows by under the same churn is the runtime's own.
 * @type {Declared["startBareGateway"]}
 */
export const startBareGateway = async () => {
  const dir = mkdtempSync(join(tmpdir(), "zgate-bare-"));
  const origin = await startOrigin();
  const port = await freePort();
  const { compatibilityDate, compatibilityFlags } = readCompatibility();
  writeFileSync(join(dir, "bare.mjs"), BARE_WORKER);
  writeFileSync(
    join(dir, "wrangler.toml"),
    [
      'name = "bare"',
      'main = "bare.mjs"',
      `compatibility_date = "${compatibilityDate}"`,
      `compatibility_flags = ${JSON.stringify(compatibilityFlags)}`,
      "[assets]",
      `directory = ${JSON.stringify(join(root, ".docs-assets"))}`,
      "[vars]",
      `ORIGIN = "${origin.url}"`,
      "",
    ].join("\n"),
  );
  const wrangler = join(root, "node_modules", ".bin", "wrangler");
  const args = ["dev", "--config", join(dir, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port)];
  const gateway = await launch({
    what: "the bare Worker's wrangler dev",
    command: [wrangler, ...args, "--persist-to", join(dir, "state"), "--show-interactive-dev-session=false"],
    env: { WRANGLER_SEND_METRICS: "false" },
    port,
    dir,
    ready: (output) => output.includes("Ready on"),
  }).catch(async (err) => {
    await origin.stop();
    throw err;
  });
  const stop = async () => {
    await gateway.stop();
    await origin.stop();
  };
  return { ...gateway, name: "bare", adminToken: "", stop };
};

/**
 * The product's authenticated route with `key`, the way the product presents it.
 * @type {Declared["keyedRequest"]}
 */
export const keyedRequest = (key) => {
  const product = PRODUCTS.find((p) => key.startsWith(p.prefix));
  if (!product) throw new Error(`no product takes keys like ${key.slice(0, 10)}…`);
  return { path: product.path, headers: product.header(key) };
};

/**
 * Request `i` of a churn: a new address (10.x.y.z, distinct for 2^24 requests from
 * `first`) and a made-up key with a valid checksum, for the products in turn.
 * @type {Declared["churnRequests"]}
 */
export const churnRequests = async (first = Math.floor(Math.random() * 2 ** 24)) => {
  const { generateKey } = /** @type {KeyFormat} */ (await importTs("src/keys/key-format.ts"));
  return (i) => {
    const product = /** @type {(typeof PRODUCTS)[number]} */ (PRODUCTS[i % PRODUCTS.length]);
    const { path, headers } = keyedRequest(generateKey(product.prefix));
    return { path, headers: { ...headers, "CF-Connecting-IP": addressOf(first + i) } };
  };
};

/** @type {Declared["addressOf"]} */
export const addressOf = (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

/**
 * The workerd processes `wrangler dev` runs under `root` (a process above it: npm start's,
 * or wrangler's own), each as `worker`, the runtime that runs the Worker (zgate's, with
 * its Durable Objects, KV, D1 and R2 too), or `proxy`, wrangler's own entry process on the
 * port callers use (`port`), which only passes requests on.
 * @param {number} root
 * @param {number} port
 */
async function runtimeParts(root, port) {
  const pids = [...(await runtimeProcesses(root))];
  if (pids.length === 0) throw new Error(`no workerd under pid ${root}`);
  const { stdout } = await promisify(execFile)("ps", ["-o", "pid=,rss=,args=", "-p", pids.join(",")], { encoding: "utf8" });
  return stdout
    .trim()
    .split("\n")
    .map((line) => {
      const [, pid = "0", rss = "0", args = ""] = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line) ?? [];
      return { pid: Number(pid), mb: Number(rss) / 1024, part: args.includes(`entry=127.0.0.1:${port} `) ? "proxy" : "worker" };
    });
}

/**
 * The resident memory (MB) of the runtime running the Worker and of wrangler's proxy
 * (wrangler's, not the Worker's; reported apart).
 * @type {Declared["runtimeMemory"]}
 */
export const runtimeMemory = async (root, port) => {
  let worker = 0;
  let proxy = 0;
  for (const { mb, part } of await runtimeParts(root, port)) {
    if (part === "proxy") proxy += mb;
    else worker += mb;
  }
  return { worker, proxy };
};

/**
 * The port of the V8 inspector of the runtime running the Worker (its isolate is
 * `gateway.name` there; locally zgate's Durable Objects run in the same isolate).
 * @type {Declared["runtimeInspector"]}
 */
export const runtimeInspector = async (gateway) => {
  for (const { pid, part } of await runtimeParts(gateway.pid, gateway.port)) {
    const port = part === "worker" ? await inspectorPort(pid, gateway.name) : null;
    if (port !== null) return port;
  }
  throw new Error(`no inspector in the runtime under pid ${gateway.pid}`);
};

/**
 * Sends `request(i)` at `rate` a second for `seconds`, whatever the answers (an abuser
 * does not wait), reading the runtime's memory every `every` seconds. Resolves once every
 * request sent was answered (or failed), or 65 s after sending stopped; the last reading is
 * taken when sending stops.
 * @type {Declared["drive"]}
 */
export const drive = async ({ base, request, seconds, rate, memory, every = 2 }) => {
  /** @type {Record<string, number>} */
  const statuses = {};
  /** @type {Sample[]} */
  const samples = [];
  let sent = 0;
  let answered = 0;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  /** @type {string | undefined} */
  let died;
  // A reading that fails (the runtime is gone) ends the run.
  const read = async () => {
    if (died) return;
    const at = { t: elapsed(), sent, answered };
    await memory().then(
      (mb) => void samples.push({ ...at, ...mb }),
      (err) => void (died = `${err instanceof Error ? err.message : err} (${at.t.toFixed(0)} s in)`),
    );
  };
  await read();
  let reading = Promise.resolve();
  const timer = setInterval(() => (reading = reading.then(read)), every * 1000);
  /** @type {Set<Promise<void>>} */
  const inFlight = new Set();
  while (elapsed() < seconds && !died) {
    const due = sent / rate;
    if (due > elapsed()) await new Promise((r) => setTimeout(r, (due - elapsed()) * 1000));
    const { path, headers } = request(sent++);
    const call = fetch(base + path, { headers, signal: AbortSignal.timeout(60_000) })
      .then(async (response) => {
        await response.arrayBuffer();
        statuses[response.status] = (statuses[response.status] ?? 0) + 1;
      })
      .catch((err) => {
        const name = err instanceof Error ? err.name : "error";
        statuses[name] = (statuses[name] ?? 0) + 1;
      });
    const tracked = call.finally(() => {
      answered++;
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
  }
  const unansweredAtEnd = inFlight.size;
  clearInterval(timer);
  await reading;
  await read();
  // Each request gives up after 60 s; a fetch that still has not settled a little later
  // (seen under heavy load, with no connection left open) is counted, not waited for.
  await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(r, 65_000).unref())]);
  if (inFlight.size > 0) statuses.unsettled = inFlight.size;
  return { seconds, rate, sent, statuses, unansweredAtEnd, samples, died };
};

/**
 * How much `field` grew over the run's last `span` seconds: the least-squares slope of
 * the readings in it times `span` (one reading's noise moves it little), and the plain
 * difference between the last reading and the one at the span's start.
 * @type {Declared["growthOverLast"]}
 */
export const growthOverLast = (samples, span, field = "worker") => {
  const end = samples.at(-1)?.t ?? 0;
  const window = samples.filter((s) => s.t >= end - span - 0.5);
  const n = window.length;
  const meanT = window.reduce((a, s) => a + s.t, 0) / n;
  const meanY = window.reduce((a, s) => a + s[field], 0) / n;
  const slope = window.reduce((a, s) => a + (s.t - meanT) * (s[field] - meanY), 0) / window.reduce((a, s) => a + (s.t - meanT) ** 2, 0);
  const first = /** @type {Sample} */ (window[0]);
  const last = /** @type {Sample} */ (window.at(-1));
  return { fitted: slope * span, difference: last[field] - first[field], readings: n };
};
