// The node tests' running gateway (test/node/dev-gateway.ts starts it as a process of its
// own): zgate's bundle in workerd through Miniflare, with the bindings `wrangler dev` gives
// it (wrangler.toml read by wrangler's own unstable_getMiniflareWorkerOptions: vars, KV,
// D1, R2, Durable Objects, the docs assets) and more settings from a JSON file, its local
// data where `wrangler dev --persist-to <dir>` keeps it (<dir>/v3), on 127.0.0.1:<port>.
//
// Not `wrangler dev` itself, whose proxy in front of the Worker (wrangler's ProxyWorker)
// answers a failed hop to the Worker by comparing the request's whole URL with the
// Worker's base URL: they differ for every path but `/`, so a failure on the hop reads as
// a reload, and a POST gets wrangler's 503 "Your worker restarted mid-request" (the
// security console test's first try, in a loaded npm test, with no reload in wrangler's
// log) and a GET waits for a reload that never comes (as one of that test's requests
// seemingly did in CI). Here a request goes straight from Miniflare's entry to the Worker,
// within one workerd, and no wrangler process (its file watching, its request log, its
// inspector relaying the Worker's log lines) runs beside it: usage-loss's load, flat out,
// ran at 330-360 requests a second, against about 55 behind wrangler dev. `npm start`
// still runs wrangler dev (test/node/quick-start.test.ts).
//
// Usage: node test/node/gateway-runtime.mjs <worker dir> <state dir> <port> <settings.json>
// where <worker dir> holds the bundle (zgate.mjs) and wrangler's Miniflare options for it
// (worker.json), made once a run by test/node/gateway-setup.ts (loading wrangler's API
// costs a second of CPU). Prints "ready on http://127.0.0.1:<port>" once it answers;
// SIGTERM stops it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { bundledScript } from "../../bench/workers.mjs";

const [worker, state, port, settingsFile] = process.argv.slice(2);
if (!worker || !state || !port || !settingsFile)
  throw new Error("usage: gateway-runtime.mjs <worker dir> <state dir> <port> <settings.json>");

/** @type {import("miniflare").WorkerOptions} */
const options = JSON.parse(readFileSync(join(worker, "worker.json"), "utf8"));
/** @type {Record<string, string>} */
const settings = JSON.parse(readFileSync(settingsFile, "utf8"));
const mf = new Miniflare({
  ...options,
  ...bundledScript(join(worker, "zgate.mjs")),
  bindings: { ...options.bindings, ...settings },
  host: "127.0.0.1",
  port: Number(port),
  defaultPersistRoot: join(state, "v3"),
  // Offline, as wrangler dev is here: the placeholder `request.cf`, not one fetched from Cloudflare.
  cf: false,
  /**
   * The Worker's output as it comes, without a console.log per line (Miniflare's default).
   * @param {import("node:stream").Readable} stdout
   * @param {import("node:stream").Readable} stderr
   */
  handleRuntimeStdio(stdout, stderr) {
    stdout.pipe(process.stdout);
    stderr.pipe(process.stderr);
  },
});
await mf.ready;
console.log(`ready on http://127.0.0.1:${port}`);
process.once("SIGTERM", () => {
  void mf.dispose().finally(() => process.exit(0));
});
