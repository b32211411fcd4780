#!/usr/bin/env node
// `npm run bench:ab`: CPU per request of this tree's zgate against another build's (a git
// ref, main by default), and of their contract floors, on loopback. On shared cores the
// CPU a request costs moves with the machine's load by more than one change to zgate
// saves; two builds measured in alternating runs, each in a workerd of its own, meet the
// same load, so their difference stands where each figure alone would not.
//
// The ref's src/, bench/ and migrations/ are taken with `git archive` and bundled with
// this tree's packages (a ref whose package-lock.json differs is measured with this
// tree's dependencies: the run says so). One origin serves every side. Each round sends
// each case's fixed count of requests (BENCH_CPU_REQUESTS) to the ref's build, this
// tree's and the bare Worker, past Miniflare's entry worker, in an order that rotates
// from round to round, and reads each side's workerd CPU time over its run (cpu-pairs.mjs,
// as `npm run bench` does). Reported per case: each side's CPU per request and its ratio
// to the bare Worker's (medians over rounds), and this tree's difference from the ref's,
// round by round (median, lowest and highest), with the load each round started at.
//
// With BENCH_AB_TOGETHER=1 the three sides of a case are driven at the same time instead
// (cpu-together.mjs), and each figure is taken per window of BENCH_AB_WINDOW_MS over
// BENCH_AB_WINDOWS windows: the sides meet the same moments of the machine, so a ratio
// moves far less from window to window than from one alternating round to the next. The
// sides share the cores, so read ratios and differences, not each side's own figure.
//
// Environment:
//   BENCH_AB_BASE=main        the git ref to measure against
//   BENCH_AB_CASES=zappway_key,zsky_key,floor   ids of bench/cases.mjs cases, and `floor` (contract-floor.mjs)
//   BENCH_AB_ROUNDS=8         rounds (each case: one run of each side a round)
//   BENCH_CPU_REQUESTS=2000   requests per run
//   BENCH_CONNECTIONS=50      autocannon connections
//   BENCH_MAX_LOAD, BENCH_LOAD_WAIT  as for `npm run bench`: each round waits for a load below it
//   BENCH_AB_TOGETHER=1       drive a case's sides at once (below); BENCH_AB_WINDOWS=20, BENCH_AB_WINDOW_MS=5000
//   BENCH_AB_OUT=path         results file (default bench/results/ab.json)
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { requestCases, zgateSettings } from "./cases.mjs";
import { cpuRun, quietEnough, spread } from "./cpu-pairs.mjs";
import { cpuTogether } from "./cpu-together.mjs";
import { runBench, setting, track, whileBuilding } from "./harness.mjs";
import { measure, median, round } from "./load.mjs";
import { startOrigin } from "./origin.mjs";
import { machineInfo, writeResults } from "./report.mjs";
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

/** @typedef {import("./workers.mjs").Instance} Instance */
/** @typedef {import("./cpu-pairs.mjs").LoadRequest} LoadRequest */
/** @typedef {import("./report.mjs").CpuRun} CpuRun */
/** @typedef {"base" | "head" | "bare"} Side */
/** @typedef {{ id: string, path: string, method?: string, headers?: Record<string, string>, body?: string, expect?: number }} AbRequest */

const base = process.env.BENCH_AB_BASE || "main";
const caseIds = (process.env.BENCH_AB_CASES || "zappway_key,zsky_key,floor").split(",").map((s) => s.trim());
const config = {
  rounds: Math.round(setting("BENCH_AB_ROUNDS", 8, 8, false)),
  requests: Math.round(setting("BENCH_CPU_REQUESTS", 2000, 2000, false)),
  connections: Math.round(setting("BENCH_CONNECTIONS", 50, 50, false)),
  maxLoad: Number(process.env.BENCH_MAX_LOAD || 0),
  loadWait: setting("BENCH_LOAD_WAIT", 600, 600, false),
  together: process.env.BENCH_AB_TOGETHER === "1",
  windows: Math.round(setting("BENCH_AB_WINDOWS", 20, 20, false)),
  windowMs: Math.round(setting("BENCH_AB_WINDOW_MS", 5000, 5000, false)),
};
const outFile = resolve(process.env.BENCH_AB_OUT || join(root, "bench", "results", "ab.json"));
const SIDES = /** @type {const} */ (["base", "head", "bare"]);

/** @param {string[]} args */
const git = (args) => execFileSync("git", ["-C", root, ...args], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 }).trim();

/**
 * One request, to fail fast with a readable message instead of a run of errors.
 * @param {LoadRequest} load
 */
async function preflight(load) {
  const response = await fetch(load.url, { method: load.method ?? "GET", headers: load.headers, body: load.body });
  const text = await response.text();
  if (response.status !== (load.expect ?? 200))
    throw new Error(`preflight: ${load.url} answered ${response.status}: ${text.slice(0, 300)}`);
}

async function main() {
  const commit = git(["rev-parse", "--short", base]);
  const head = git(["rev-parse", "--short", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--", "src", "bench/contract-floor.mjs"]) !== "";
  const samePackages = git(["diff", "--name-only", base, "--", "package-lock.json"]) === "";
  if (!samePackages) console.warn(`bench:ab: ${base}'s package-lock.json differs from this tree's: its build uses this tree's packages`);

  const work = mkdtempSync(join(tmpdir(), "zgate-ab-"));
  track(() => rmSync(work, { recursive: true, force: true }), { dir: work });
  const storage = storageRoot("tmpfs");
  track(() => rmSync(storage, { recursive: true, force: true }), { dir: storage });
  checkOutRef(base, join(work, "base-tree"));
  mkdirSync(join(work, "base"));
  const [built, builtBase] = await whileBuilding(Promise.all([buildAll(work), buildTree(join(work, "base-tree"), join(work, "base"))]));

  const compat = readCompatibility();
  const origin = await startOrigin();
  track(origin.stop, { pids: [origin.pid] });
  const settings = zgateSettings(origin.url, 1);
  /** @type {(name: Side, scriptPath: string, migrations: string) => Promise<Instance>} */
  const zgate = async (name, scriptPath, migrations) => {
    const instance = await startZgate({ name: `zgate-${name}`, scriptPath, settings, compat, storage });
    track(instance.stop, { pids: instance.pids });
    await applyMigrations(instance.mf, migrations);
    return instance;
  };
  /** @type {(name: Side, scriptPath: string) => Promise<Instance>} */
  const floor = async (name, scriptPath) => {
    const instance = await startContractFloor({
      name: `floor-${name}`,
      scriptPath,
      originUrl: origin.url,
      assertionKeys: settings.ORIGIN_ASSERTION_KEYS,
      compat,
      storage,
    });
    track(instance.stop, { pids: instance.pids });
    return instance;
  };
  const bare = await startBare({ scriptPath: built.bare, originUrl: origin.url, compat, storage });
  track(bare.stop, { pids: bare.pids });
  const zgates = {
    base: await zgate("base", builtBase.zgate, join(work, "base-tree", "migrations")),
    head: await zgate("head", built.zgate, join(root, "migrations")),
  };
  const floors = caseIds.includes("floor") ? { base: await floor("base", builtBase.floor), head: await floor("head", built.floor) } : null;

  // Each zgate's own credentials (keys are made through its admin API, jobs submitted to it).
  const casesOf = { base: await requestCases(zgates.base.url, settings), head: await requestCases(zgates.head.url, settings) };
  /** @typedef {{ id: string, sides: Record<Side, { instance: Instance, request: AbRequest }> }} AbCase */
  /** @type {AbCase[]} */
  const cases = caseIds.map((id) => {
    if (id === "floor") {
      if (!floors) throw new Error("unreachable");
      const request = { id, path: "/zappway/api/v1/agents", headers: { Authorization: "Bearer contract-floor-key" } };
      return {
        id,
        sides: { base: { instance: floors.base, request }, head: { instance: floors.head, request }, bare: { instance: bare, request } },
      };
    }
    /** @type {(side: "base" | "head") => AbRequest} */
    const of = (side) => {
      const found = casesOf[side].find((c) => c.id === id);
      if (!found || found.target !== "zgate") throw new Error(`bench:ab: no zgate case "${id}" in bench/cases.mjs`);
      return found;
    };
    return {
      id,
      sides: {
        base: { instance: zgates.base, request: of("base") },
        head: { instance: zgates.head, request: of("head") },
        bare: { instance: bare, request: { ...of("head"), expect: 200 } },
      },
    };
  });
  /** @type {(side: { instance: Instance, request: AbRequest }) => LoadRequest} */
  const loadOf = ({ instance, request }) => ({
    url: (instance.directUrl ?? instance.url) + request.path,
    method: request.method,
    // Past the entry worker nothing adds the client's address; Cloudflare's edge does in production.
    headers: { "CF-Connecting-IP": "127.0.0.1", ...request.headers },
    body: request.body,
    expect: request.expect,
    connections: config.connections,
  });
  for (const c of cases) {
    for (const side of SIDES) {
      const load = loadOf(c.sides[side]);
      await preflight(load);
      await measure({ ...load, duration: 1 }); // warm-up: JIT, caches, leases
    }
  }
  console.log(
    `bench:ab: ${base} (${commit}) against this tree (${head}${dirty ? ", with uncommitted changes" : ""}), ` +
      (config.together ? `${config.windows} windows of ${config.windowMs} ms, the sides at once` : `${config.rounds} rounds`),
  );

  /** @typedef {Pick<CpuRun, "cpuMsPerRequest" | "unexpected">} SideFigure */
  /** @type {Record<string, { load: number, order?: Side[], runs: Record<Side, SideFigure> }[]>} */
  const rounds = Object.fromEntries(cases.map((c) => [c.id, []]));
  if (config.together) {
    for (const c of cases) {
      await quietEnough(config);
      const windows = await cpuTogether(
        SIDES.map((side) => ({ name: side, load: loadOf(c.sides[side]), instance: c.sides[side].instance })),
        { windows: config.windows, windowMs: config.windowMs, warmupMs: 2000, loadNow: () => round(loadavg()[0] ?? 0, 2) },
      );
      for (const [w, { load, sides }] of windows.entries()) {
        const runs = /** @type {Record<Side, SideFigure>} */ (sides);
        rounds[c.id]?.push({ load, runs });
        console.log(
          `window ${w + 1}/${config.windows} ${c.id}: ${SIDES.map((s) => `${s} ${runs[s].cpuMsPerRequest.toFixed(3)}`).join(", ")} ms/req (load ${load})`,
        );
      }
    }
  } else {
    for (let r = 0; r < config.rounds; r++) {
      const order = SIDES.map((_, i) => SIDES[(i + r) % SIDES.length]);
      for (const c of cases) {
        const load = await quietEnough(config);
        /** @type {Partial<Record<Side, CpuRun>>} */
        const runs = {};
        for (const side of /** @type {Side[]} */ (order))
          runs[side] = await cpuRun(loadOf(c.sides[side]), c.sides[side].instance, config.requests);
        const done = /** @type {Record<Side, CpuRun>} */ (runs);
        rounds[c.id]?.push({ load, order: /** @type {Side[]} */ (order), runs: done });
        console.log(
          `round ${r + 1}/${config.rounds} ${c.id}: ${SIDES.map((s) => `${s} ${done[s].cpuMsPerRequest.toFixed(3)}`).join(", ")} ms/req (load ${load})`,
        );
      }
    }
  }

  const results = cases.map(({ id }) => {
    const rs = rounds[id] ?? [];
    /** @type {(side: Side) => number[]} */
    const per = (side) => rs.map((r) => r.runs[side].cpuMsPerRequest);
    const unexpected = Math.max(...rs.flatMap((r) => SIDES.map((s) => r.runs[s].unexpected)));
    return {
      id,
      cpuMsPerRequest: { base: round(median(per("base")), 4), head: round(median(per("head")), 4), bare: round(median(per("bare")), 4) },
      xBare: {
        base: spread(rs.map((r) => r.runs.base.cpuMsPerRequest / r.runs.bare.cpuMsPerRequest)),
        head: spread(rs.map((r) => r.runs.head.cpuMsPerRequest / r.runs.bare.cpuMsPerRequest)),
      },
      headMinusBaseMs: spread(rs.map((r) => r.runs.head.cpuMsPerRequest - r.runs.base.cpuMsPerRequest)),
      headOverBase: spread(rs.map((r) => r.runs.head.cpuMsPerRequest / r.runs.base.cpuMsPerRequest)),
      loads: rs.map((r) => r.load),
      unexpected,
      rounds: rs,
    };
  });
  writeResults(outFile, {
    schema: "zgate-bench-ab/1",
    base: { ref: base, commit, samePackages },
    head: { commit: head, dirty },
    machine: { ...machineInfo(root), loadAverageAfter: loadavg().map((x) => round(x, 2)) },
    config,
    cases: results,
  });

  const unit = config.together ? "window" : "round";
  console.log(
    `\nCPU ms/request past the entry worker, medians of ${config.together ? config.windows : config.rounds} ${unit}s (in brackets: lowest..highest ${unit}):`,
  );
  for (const c of results) {
    const x = (/** @type {import("./report.mjs").Spread} */ s) =>
      `${s.median.toFixed(2)}x [${s.range[0].toFixed(2)}..${s.range[1].toFixed(2)}]`;
    const d = c.headMinusBaseMs;
    console.log(
      `${c.id.padEnd(12)} ${base} ${c.cpuMsPerRequest.base.toFixed(3)} (${x(c.xBare.base)} bare) | this ${c.cpuMsPerRequest.head.toFixed(3)} ` +
        `(${x(c.xBare.head)} bare) | bare ${c.cpuMsPerRequest.bare.toFixed(3)} | this - ${base}: ${d.median >= 0 ? "+" : ""}${d.median.toFixed(3)} ms ` +
        `[${d.range[0].toFixed(3)}..${d.range[1].toFixed(3)}] (${x(c.headOverBase)}) | load ${Math.min(...c.loads)}-${Math.max(...c.loads)}` +
        (c.unexpected > 0 ? ` | ${(100 * c.unexpected).toFixed(1)}% unexpected statuses` : ""),
    );
  }
  console.log(`Results: ${outFile}`);
}

await runBench("bench:ab", main);
