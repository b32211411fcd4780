#!/usr/bin/env node
// `npm run bench:instructions`: the machine instructions one request costs, counted by
// valgrind's callgrind in each side's workerd, for zgate (this tree), its contract floor and
// the bare Worker on one case; with BENCH_INSTR_BASE=<git ref>, for zgate against that
// build's zgate instead. CPU time on these shared cores moves by tens of per cent from run
// to run; instructions retired do not move with the machine's load, so a change of one or
// two per cent shows in one run (docs/benchmarks.md, "Instructions per request").
//
// Only the isolate's own thread is counted: the runtime's other threads (V8's concurrent
// compiler and GC helpers) vary with timing, not with the path. Each side is warmed, then
// rounds of BENCH_INSTR_REQUESTS requests alternate between the sides. A round that met a
// full GC or the V8 compiler is dearer than the path itself, so each side reports its
// lowest round beside the median. Under callgrind a request takes some 7 ms: time, latency
// and anything paced by the clock (lease renewals, usage flushes per request) are not
// production's, nor is all of the code's optimization (some of zgate's functions stay
// unoptimized at that pace: printed per side); only the path's instructions are.
//
// Needs valgrind (`apt-get install valgrind`). Environment:
//   BENCH_INSTR_CASE=zappway_key     a zgate case of bench/cases.mjs
//   BENCH_INSTR_BASE=<ref>           zgate of that git ref against this tree's (else: floor and bare)
//   BENCH_INSTR_WARM=6000            requests before counting (per side)
//   BENCH_INSTR_REQUESTS=1500        requests a round
//   BENCH_INSTR_ROUNDS=5             rounds (each side once a round)
//   BENCH_INSTR_CONCURRENCY=4        requests in flight at once (the garbage collector's share grows with them)
//   BENCH_INSTR_MIX=300              requests of every other zgate case before a zgate's warm-up (0: none)
//   BENCH_INSTR_CYCLES=1             estimated cycles instead of instructions (below); about twice as slow
//   BENCH_INSTR_KEEP=1               keep callgrind's dumps (printed where) for callgrind_annotate
//
// Instructions are not all the CPU a request costs: zgate took as many instructions as its
// floor to within 5%, and 15-22% more CPU time. With BENCH_INSTR_CYCLES=1 callgrind also simulates the
// caches and the branch predictor, and each round is counted in estimated cycles:
// instructions + 10 x first-level cache misses (instruction and data) + 100 x last-level
// misses + 15 x mispredicted branches (ESTIMATE_WEIGHTS). The weights are round figures of
// what such events cost on x86 cores, not this machine's; they are the same for every
// side, so the ratios are what to read. Under the simulation a request takes some 40 ms,
// and zgate's instructions over its floor read 3-4 times what plain callgrind's pace gives
// (why is not established). At either pace zgate's objects receive calls on many more
// requests than in production (printed per side), work the floor never has: against the
// floor zgate is overstated; between two builds of zgate it steers (docs/benchmarks.md,
// "Estimated cycles").
//
// A production isolate serves all three products, so by default each zgate first serves
// every other case of bench/cases.mjs: code that has seen several products' objects runs
// slower than code that has seen one (V8's inline caches), and an isolate that served
// only the measured case would flatter zgate (some 20-30 us of CPU a ZappWay keyed request
// on this machine, measured with the sides driven one after the other).
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requestCases, zgateSettings } from "./cases.mjs";
import { runBench, setting, track, whileBuilding } from "./harness.mjs";
import { median } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import {
  applyMigrations,
  buildAll,
  buildTree,
  checkOutRef,
  readCompatibility,
  root,
  startBare,
  startContractFloor,
  startZgate,
  storageRoot,
} from "./workers.mjs";

const caseId = process.env.BENCH_INSTR_CASE || "zappway_key";
const base = process.env.BENCH_INSTR_BASE || "";
const warm = Math.round(setting("BENCH_INSTR_WARM", 6000, 6000, false));
const requests = Math.round(setting("BENCH_INSTR_REQUESTS", 1500, 1500, false));
const rounds = Math.round(setting("BENCH_INSTR_ROUNDS", 5, 5, false));
const concurrency = Math.round(setting("BENCH_INSTR_CONCURRENCY", 4, 4, false));
const estimateCycles = process.env.BENCH_INSTR_CYCLES === "1";
const keepDumps = process.env.BENCH_INSTR_KEEP === "1";
const unit = estimateCycles ? "estimated cycles" : "instructions";
/** Cycles an event of callgrind's cache and branch simulation is counted as (see the header). */
const ESTIMATE_WEIGHTS = { Ir: 1, I1mr: 10, D1mr: 10, D1mw: 10, ILmr: 100, DLmr: 100, DLmw: 100, Bcm: 15, Bim: 15 };
const mix = process.env.BENCH_INSTR_MIX === "0" ? 0 : Math.round(setting("BENCH_INSTR_MIX", 300, 300, false));
// The floor's own request, as bench:ab sends it.
const FLOOR_REQUEST = { path: "/zappway/api/v1/agents", headers: { Authorization: "Bearer contract-floor-key" } };

/** @typedef {{ path: string, method?: string, headers?: Record<string, string>, body?: string, expect?: number }} Sent */
/** @typedef {{ name: string, url: string, request: Sent, mix: (Sent & { id: string })[], pids: number[], rounds: number[], objectCalls: number[], baselineReturns: number[], output: () => string, valgrindLog: () => string }} Side */

/** Processes running callgrind: its processes are named after the tool, not workerd. */
function callgrindPids() {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/stat`, "utf8").includes("(callgrind");
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * The instructions (or estimated cycles) of the isolate's thread (callgrind's thread 1) in a
 * process's latest dump, and the calls its Durable Objects received on it.
 * @param {string} dumps
 * @param {number} pid
 */
function isolateCounts(dumps, pid) {
  const files = readdirSync(dumps).filter((f) => f.startsWith(`cg.${pid}.out.`) && f.endsWith("-01"));
  const latest = files.sort((a, b) => Number(/\.out\.(\d+)-/.exec(a)?.[1]) - Number(/\.out\.(\d+)-/.exec(b)?.[1])).at(-1);
  if (!latest) throw new Error(`no callgrind dump of process ${pid} in ${dumps}`);
  const text = readFileSync(join(dumps, latest), "utf8");
  const events = (/^events:\s+(.+)$/m.exec(text)?.[1] ?? "Ir").trim().split(/\s+/);
  const totals = ((/^summary:\s+(.+)$/m.exec(text) ?? /^totals:\s+(.+)$/m.exec(text))?.[1] ?? "").trim().split(/\s+/).map(Number);
  const [objectCalls = 0, baselineReturns = 0] = callsInto(text, [
    "workerd::api::JsRpcTargetBase::callImpl(",
    // Every return from a function running in V8's baseline tier (Sparkplug: compiled
    // without optimization) passes through this builtin: how much of the path ran unoptimized.
    "Builtins_BaselineLeaveFrame",
  ]);
  if (!estimateCycles) return { cost: totals[events.indexOf("Ir")] ?? NaN, objectCalls, baselineReturns };
  let cycles = 0;
  for (const [event, weight] of Object.entries(ESTIMATE_WEIGHTS)) {
    const i = events.indexOf(event);
    if (i < 0) throw new Error(`callgrind's dump has no ${event} count: was it run with --cache-sim=yes --branch-sim=yes?`);
    cycles += weight * (totals[i] ?? 0);
  }
  return { cost: cycles, objectCalls, baselineReturns };
}

/**
 * How many times a dump's functions called each function whose name starts with one of
 * `prefixes` (a count per prefix, in one pass over the dump): callgrind names a function in
 * full once (`fn=(7) name`, `cfn=(7) name`), then by number, and each `calls=N` line counts
 * the calls to the `cfn` before it.
 * @param {string} text
 * @param {string[]} prefixes
 */
function callsInto(text, prefixes) {
  /** @type {Map<string, number>} function id -> index of the prefix its name starts with */
  const ids = new Map();
  const calls = prefixes.map(() => 0);
  let callee = "";
  for (const line of text.split("\n")) {
    const named = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(line);
    if (named) {
      const name = named[2];
      const i = name === undefined ? -1 : prefixes.findIndex((prefix) => name.startsWith(prefix));
      if (i >= 0) ids.set(named[1] ?? "", i);
      if (line.startsWith("cfn=")) callee = named[1] ?? "";
    } else if (line.startsWith("calls=")) {
      const i = ids.get(callee);
      if (i !== undefined) calls[i] = (calls[i] ?? 0) + Number(line.slice(6).split(" ")[0]);
    }
  }
  return calls;
}

/**
 * Whether a fetch failed because the runtime closed the kept-alive connection it was sent
 * on (undici: "other side closed", or a reset). Under callgrind this happens every few thousand
 * requests: the runtime is alive, and the request is sent again (sendAgain).
 * Before this was seen, such a run stopped as if the runtime had died.
 * @param {unknown} err
 */
const closedUnderUs = (err) => {
  const code = err instanceof TypeError ? /** @type {{ code?: string } | undefined} */ (err.cause)?.code : undefined;
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET";
};

/**
 * The answer to `send()`, sent again each time the connection it went on had been closed
 * (closedUnderUs): each failure uses up one such connection of fetch's pool, which holds
 * at most one a request in flight, so a request that fails more often than that is failed.
 * @param {() => Promise<Response>} send
 */
async function sendAgain(send) {
  for (let tries = 1; ; tries++) {
    try {
      return await send();
    } catch (err) {
      if (!closedUnderUs(err) || tries > concurrency) throw err;
    }
  }
}

/**
 * `count` requests of the side's case (or of `request`), BENCH_INSTR_CONCURRENCY at a time; the answers not as expected.
 * @param {Side} side
 * @param {number} count
 * @param {Sent} [request]
 */
async function drive(side, count, request = side.request) {
  let left = count;
  let unexpected = 0;
  const { path, method = "GET", headers = {}, body, expect = 200 } = request;
  const send = () => fetch(side.url + path, { method, headers: { "CF-Connecting-IP": "127.0.0.1", ...headers }, body });
  const one = async () => {
    while (left-- > 0) {
      const response = await sendAgain(send);
      if (response.status !== expect && unexpected++ === 0) {
        console.log(`${side.name}: answered ${response.status} (expected ${expect}): ${(await response.clone().text()).slice(0, 200)}`);
      }
      await response.arrayBuffer();
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, one));
  } catch (err) {
    // No answer, and not for a closed connection (the runtime may have died): what it said last, then the error.
    const said = side
      .output()
      .split("\n")
      .filter((line) => !line.includes('"msg":"request"'));
    console.error(`${side.name}: its runtime's last output:\n${said.slice(-20).join("\n")}\nvalgrind's log:\n${side.valgrindLog()}`);
    throw err;
  }
  return unexpected;
}

async function main() {
  try {
    execFileSync("valgrind", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("valgrind is not installed: apt-get install valgrind");
  }
  const work = mkdtempSync(join(tmpdir(), "zgate-instructions-"));
  if (keepDumps) console.log(`bench:instructions: callgrind's dumps are kept in ${join(work, "dumps")}`);
  else track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const dumps = join(work, "dumps");
  mkdirSync(dumps);
  // Miniflare starts this in place of workerd: callgrind, counting nothing until told to.
  const wrapper = join(work, "workerd-under-callgrind.sh");
  const workerd = execFileSync(process.execPath, ["-e", "import('workerd').then((m) => console.log(m.default.default ?? m.default))"], {
    cwd: root,
    encoding: "utf8",
  }).trim();
  writeFileSync(
    wrapper,
    `#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no --separate-threads=yes --dump-instr=no ${estimateCycles ? "--cache-sim=yes --branch-sim=yes " : ""}` +
      `--callgrind-out-file=${dumps}/cg.%p.out -q --log-file=${dumps}/valgrind.%p.log ${workerd} "$@"\n`,
  );
  chmodSync(wrapper, 0o755);

  let baseTree = "";
  if (base) {
    baseTree = join(work, "base-tree");
    checkOutRef(base, baseTree);
    mkdirSync(join(work, "base"));
  }
  const [built, builtBase] = await whileBuilding(Promise.all([buildAll(work), base ? buildTree(baseTree, join(work, "base")) : null]));
  const compat = readCompatibility();
  const storage = storageRoot("tmpfs");
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const settings = zgateSettings(origin.url, 1);
  process.env.MINIFLARE_WORKERD_PATH = wrapper;

  /**
   * Starts one side under callgrind and finds its process.
   * @param {string} name
   * @param {() => Promise<import("./workers.mjs").Instance>} start
   * @param {(instance: import("./workers.mjs").Instance) => Promise<{ request: Sent, mix?: Side["mix"] }>} request
   * @returns {Promise<Side>}
   */
  const side = async (name, start, request) => {
    const before = new Set(callgrindPids());
    const instance = await start();
    track(instance.stop, { pids: instance.pids });
    const pids = callgrindPids().filter((pid) => !before.has(pid));
    const output = () => instance.output.text;
    const { request: sent, mix = [] } = await request(instance);
    const valgrindLog = () =>
      pids
        .map((pid) => {
          try {
            return readFileSync(join(dumps, `valgrind.${pid}.log`), "utf8").slice(-2000);
          } catch {
            return `(no log of process ${pid})`;
          }
        })
        .join("\n");
    return {
      name,
      url: instance.directUrl ?? instance.url,
      request: sent,
      mix,
      pids,
      rounds: [],
      objectCalls: [],
      baselineReturns: [],
      output,
      valgrindLog,
    };
  };
  /** @type {(instance: import("./workers.mjs").Instance, migrations: string) => Promise<{ request: Sent, mix: Side["mix"] }>} */
  const zgateCase = async (instance, migrations) => {
    await applyMigrations(instance.mf, migrations);
    const cases = (await requestCases(instance.url, settings)).filter((c) => c.target === "zgate");
    const found = cases.find((c) => c.id === caseId);
    if (!found) throw new Error(`bench:instructions: no zgate case "${caseId}" in bench/cases.mjs`);
    return { request: found, mix: mix > 0 ? cases.filter((c) => c !== found) : [] };
  };
  /** @type {Side[]} */
  const sides = [
    await side(
      "zgate",
      () => startZgate({ scriptPath: built.zgate, settings, compat, storage }),
      (z) => zgateCase(z, join(root, "migrations")),
    ),
  ];
  if (builtBase) {
    sides.unshift(
      await side(
        `zgate ${base}`,
        () => startZgate({ name: "zgate-base", scriptPath: builtBase.zgate, settings, compat, storage }),
        (z) => zgateCase(z, join(baseTree, "migrations")),
      ),
    );
  } else {
    const floorAssertionKeys = settings.ORIGIN_ASSERTION_KEYS;
    const zgateRequest = sides[0]?.request;
    sides.push(
      await side(
        "floor",
        () => startContractFloor({ scriptPath: built.floor, originUrl: origin.url, assertionKeys: floorAssertionKeys, compat, storage }),
        async () => ({ request: FLOOR_REQUEST }),
      ),
      await side(
        "bare",
        () => startBare({ scriptPath: built.bare, originUrl: origin.url, compat, storage }),
        async () => ({ request: { ...zgateRequest, path: zgateRequest?.path ?? "/", expect: 200 } }),
      ),
    );
  }
  for (const s of sides) if (s.pids.length === 0) throw new Error(`${s.name}: no callgrind process found`);

  const control = (/** @type {string[]} */ args, /** @type {number} */ pid) =>
    execFileSync("callgrind_control", [...args, String(pid)], { stdio: "ignore" });
  const mixed = sides[0]?.mix.map((c) => c.id).join(", ") || "none";
  console.log(
    `bench:instructions: case ${caseId}, ${warm} requests of warm-up a side (zgate after ${mix} of each other case: ${mixed}), ${rounds} rounds of ${requests}`,
  );
  for (const s of sides) {
    for (const other of s.mix) {
      // Warm-up only: a case's first answers may differ (the 429 case's key is admitted until its window fills).
      const unexpected = await drive(s, mix, other);
      if (unexpected > mix / 10) throw new Error(`${s.name}: ${unexpected} of ${mix} answers of case ${other.id} were not as expected`);
    }
    // Under callgrind an origin call now and then outlasts ORIGIN_TIMEOUT_MS (a 504): a few are no reason to stop.
    const unexpected = await drive(s, warm);
    if (unexpected > warm / 100) throw new Error(`${s.name}: ${unexpected} of ${warm} warm-up answers were not as expected`);
    for (const pid of s.pids) control(["--instr=on"], pid);
  }
  for (let round = 0; round < rounds; round++) {
    // Alternating which side goes first, so neither always meets the other's aftermath.
    for (const s of round % 2 ? [...sides].reverse() : sides) {
      for (const pid of s.pids) control(["--zero"], pid);
      const unexpected = await drive(s, requests);
      let cost = 0;
      let objectCalls = 0;
      let baselineReturns = 0;
      for (const pid of s.pids) {
        control(["--dump"], pid);
        const counts = isolateCounts(dumps, pid);
        cost += counts.cost;
        objectCalls += counts.objectCalls;
        baselineReturns += counts.baselineReturns;
      }
      s.rounds.push(Math.round(cost / requests));
      s.objectCalls.push(objectCalls / requests);
      s.baselineReturns.push(baselineReturns / requests);
      if (unexpected > 0) console.log(`${s.name}: ${unexpected} answers not as expected in round ${round + 1}`);
    }
    console.log(`round ${round + 1}: ${sides.map((s) => `${s.name} ${s.rounds[round]}`).join(", ")} ${unit} a request`);
  }
  const reference = sides.at(-1);
  console.log(`\n${unit} a request: median of rounds (lowest round)` + (base ? "" : ", and as a multiple of the bare Worker's"));
  for (const s of sides) {
    const ratio = base || !reference ? "" : ` = ${(median(s.rounds) / median(reference.rounds)).toFixed(3)}x bare`;
    console.log(`  ${s.name.padEnd(18)} ${Math.round(median(s.rounds))} (${Math.min(...s.rounds)})${ratio}`);
  }
  // Calls into the guard and usage objects come with the clock or the request rate (lease
  // renewals, usage flushes): at callgrind's pace more of them fall on each request than in
  // production (a guard call in about 250 requests at 2,000 a second). The floor and the
  // bare Worker have no object and receive none.
  console.log(
    `Durable Object calls received a request (their work is in the counts above): ` +
      sides.map((s) => `${s.name} ${median(s.objectCalls).toFixed(3)}`).join(", "),
  );
  // At callgrind's pace some functions of zgate's isolate (its objects' among them) still ran
  // unoptimized after 15,000 requests of warm-up (some 23 such returns a request, the floor
  // none), where at full speed perf found its request path optimized (docs/benchmarks.md,
  // "What this host's CPU time can tell"): a side with such returns is counted slower than it runs.
  console.log(
    `Returns from unoptimized (baseline) functions a request: ` +
      sides.map((s) => `${s.name} ${median(s.baselineReturns).toFixed(1)}`).join(", "),
  );
  if (base && sides[0] && sides[1]) {
    const [before, after] = [sides[0], sides[1]];
    const differences = after.rounds.map((n, i) => n - (before.rounds[i] ?? n));
    console.log(
      `  this tree - ${base}: ${Math.round(median(differences))} a request, median of the rounds' differences ` +
        `[${Math.min(...differences)}..${Math.max(...differences)}]; lowest rounds ${Math.min(...after.rounds) - Math.min(...before.rounds)}`,
    );
  }
}

await runBench("bench:instructions", main);
