// `npm run bench:inflight`: what a request waiting for its origin holds in its isolate's JS
// heap, for zgate (a case of bench/cases.mjs, BENCH_INFLIGHT_CASE: zappway_key) and, on that
// case, its contract floor. A count, not a time: it
// does not move with the machine's load. Why it matters: under load every request in flight
// holds its state across the origin's round trip, and each young-generation collection
// copies all of it (at 50 in flight, some 50 times what one request holds); the copying is
// memory traffic, dearer than its instruction count says. At 2482212 zgate held 13.8 KB a
// request against the floor's 8.9 KB, and its garbage collection took 39,000 instructions a
// request at 32 in flight against 26,000 at 4 (the floor: 17,600 at both); see
// docs/benchmarks.md, "What a request in flight holds".
//
// Each side: a warm-up, a heap snapshot (each is taken after a full collection), then
// BENCH_INFLIGHT_REQUESTS requests (200) held at the origin, a second snapshot, and the
// difference per held request, by kind of object (V8's snapshot node types and names;
// anonymous closures are one row). Native objects are the runtime's (Headers, Request).
import { createServer } from "node:http";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { requestCases, zgateSettings } from "./cases.mjs";
import { answerRequest } from "./origin.mjs";
import { runBench, setting, track } from "./harness.mjs";
import { inspect, openFirstSession, whilePoked } from "./inspector.mjs";
import { applyMigrations, buildAll, readCompatibility, root, startContractFloor, startZgate, storageRoot } from "./workers.mjs";

const held = Math.round(setting("BENCH_INFLIGHT_REQUESTS", 200, 200, false));
const caseId = process.env.BENCH_INFLIGHT_CASE || "zappway_key";

/** @typedef {{ name: string, url: string, path: string, headers: Record<string, string>, port: number }} Side */
/** @typedef {Map<string, { count: number, bytes: number }>} Census */

/**
 * The bench's origin (bench/origin.mjs's answerRequest), in this process, holding the calls to
 * `state.heldPath` while `state.holding`; any other path (a poke) it answers at once.
 */
async function holdingOrigin() {
  /** @type {(() => void)[]} */
  const waiting = [];
  const state = { holding: false, heldPath: "" };
  const server = createServer((req, res) =>
    answerRequest(req, res, (send) => (state.holding && req.url === state.heldPath ? waiting.push(send) : send())),
  );
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the origin has no port");
  return {
    url: `http://127.0.0.1:${address.port}`,
    state,
    waiting,
    release: () => waiting.splice(0).forEach((answer) => answer()),
    stop: () => new Promise((resolve) => server.close(() => resolve(undefined))),
  };
}

/**
 * The JS heap's objects by kind, from a snapshot of the side's isolate.
 * @param {Side} side
 */
async function census(side) {
  /** @type {string[]} */
  const chunks = [];
  const session = await inspect(side.port, side.name, (method, params) => {
    if (method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(params.chunk);
  });
  try {
    await whilePoked(session.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false }), () => poke(side));
  } finally {
    session.close();
  }
  const snapshot = JSON.parse(chunks.join(""));
  const { node_fields: fields, node_types: nodeTypes } = snapshot.snapshot.meta;
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f));
  /** @type {Census} */
  const kinds = new Map();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = nodeTypes[0][snapshot.nodes[i + typeAt]];
    // A string's "name" is its content: strings are one row.
    const name = type.endsWith("string") ? "" : String(snapshot.strings[snapshot.nodes[i + nameAt]]).slice(0, 60);
    const kind = `${type} ${name}`.trim();
    const row = kinds.get(kind) ?? { count: 0, bytes: 0 };
    row.count++;
    row.bytes += snapshot.nodes[i + sizeAt];
    kinds.set(kind, row);
  }
  return kinds;
}

/** @param {Side} side */
const poke = (side) =>
  fetch(`${side.url}${side.path}/poke`, { headers: { "CF-Connecting-IP": "127.0.0.1", ...side.headers } })
    .then((r) => r.arrayBuffer())
    .catch(() => {});

/** @param {Side} side */
const send = (side) =>
  fetch(side.url + side.path, { headers: { "CF-Connecting-IP": "127.0.0.1", ...side.headers } }).then(async (r) => {
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`${side.name} answered ${r.status}`);
  });

/**
 * What one held request adds to the side's heap, by kind.
 * @param {Side} side
 * @param {Awaited<ReturnType<typeof holdingOrigin>>} origin
 */
async function measure(side, origin) {
  await openFirstSession(side.port, side.name);
  for (let i = 0; i < 300; i++) await send(side);
  const before = await census(side);
  // The origin's path: the product's prefix taken off.
  origin.state.heldPath = side.path.replace(/^\/[^/]+/, "");
  origin.state.holding = true;
  const requests = Array.from({ length: held }, () => send(side));
  while (origin.waiting.length < held) await new Promise((resolve) => setTimeout(resolve, 50));
  const during = await census(side);
  origin.state.holding = false;
  origin.release();
  await Promise.all(requests);
  const rows = [...during].map(([kind, { count, bytes }]) => {
    const was = before.get(kind) ?? { count: 0, bytes: 0 };
    return { kind, count: (count - was.count) / held, bytes: (bytes - was.bytes) / held };
  });
  const total = rows.reduce((sum, row) => sum + row.bytes, 0);
  console.log(`\n${side.name}: ${Math.round(total)} bytes a request in flight (${held} held at the origin)`);
  for (const row of rows.filter((r) => Math.abs(r.bytes) >= 24).sort((a, b) => b.bytes - a.bytes)) {
    console.log(`  ${String(Math.round(row.bytes)).padStart(6)} B  ${row.count.toFixed(1).padStart(5)} objects  ${row.kind}`);
  }
  return { name: side.name, bytes: Math.round(total) };
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), "zgate-in-flight-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const built = await buildAll(work);
  const storage = storageRoot("tmpfs");
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  const origin = await holdingOrigin();
  track(origin.stop);
  const settings = zgateSettings(origin.url, 1);
  const compat = readCompatibility();
  const port = () => 9300 + Math.floor(Math.random() * 600);

  const zgatePort = port();
  const zgate = await startZgate({ scriptPath: built.zgate, settings, compat, storage, inspectorPort: zgatePort });
  track(zgate.stop, { pids: zgate.pids });
  await applyMigrations(zgate.mf, join(root, "migrations"));
  const measured = (await requestCases(zgate.url, settings)).find((c) => c.id === caseId && c.target === "zgate");
  if (!measured?.headers || measured.method) throw new Error(`bench/cases.mjs has no zgate GET case "${caseId}"`);
  const zgateResult = await measure(
    { name: "zgate", url: zgate.url, path: measured.path, headers: measured.headers, port: zgatePort },
    origin,
  );
  await zgate.stop();
  if (caseId !== "zappway_key") return;

  // The contract floor answers the ZappWay keyed call only.
  const floorPort = port();
  const floor = await startContractFloor({
    scriptPath: built.floor,
    originUrl: origin.url,
    assertionKeys: settings.ORIGIN_ASSERTION_KEYS,
    compat,
    storage,
    inspectorPort: floorPort,
  });
  track(floor.stop, { pids: floor.pids });
  const floorSide = {
    name: "floor",
    url: floor.url,
    path: measured.path,
    headers: { Authorization: "Bearer contract-floor-key" },
    port: floorPort,
  };
  const floorResult = await measure(floorSide, origin);
  console.log(
    `\nA ZappWay keyed request in flight: zgate ${zgateResult.bytes} bytes, the contract floor ${floorResult.bytes} bytes (+${zgateResult.bytes - floorResult.bytes})`,
  );
}

await runBench("bench:inflight", main);
