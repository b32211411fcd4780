// Turns raw runs into the summary, the printed table and bench/results/latest.json.
import { readFileSync, renameSync, writeFileSync, mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { spread } from "./cpu-pairs.mjs";
import { median, round } from "./load.mjs";

// What bench/results/latest.json holds (schema "zgate-bench/1"); run.mjs builds it.
/** @typedef {import("./load.mjs").RunResult} RunResult */
/** @typedef {{ a: RunResult, b: RunResult }} Pair A run of the case (A), then of the bare Worker sent the same requests (B). */
/** @typedef {{ median: number, range: [number, number] }} Spread A ratio's median over pairs, and its lowest and highest. */
/**
 * A run of a fixed request count: the workerd's CPU time over it and per request, and the throughput.
 * @typedef {{ requests: number, rps: number, p50: number, cpuMs: number, cpuMsPerRequest: number, unexpected: number }} CpuRun
 */
/**
 * Alternating fixed-count pairs, A then B: each side's CPU per request (medians), the CPU
 * ratio and the throughput ratio taken pair by pair.
 * @typedef {{
 *   cpuMsPerRequest: number,
 *   bareCpuMsPerRequest: number,
 *   cpuRatio: Spread,
 *   rpsRatio: Spread,
 *   pairs: { load: number, a: CpuRun, b: CpuRun }[],
 * }} CpuPairs
 */
/** @typedef {{ pairs: Pair[], p50: number, bareP50: number, p50AddedMs: number }} Probe Unloaded pairs (1 connection). */
/**
 * One request-level case: its runs, the unloaded pairs, CPU per request (zgate cases only,
 * through the entry worker and past it), the summary, and workerd's peak memory.
 * @typedef {{
 *   id: string,
 *   title: string,
 *   target: "origin" | "zgate",
 *   request: { method: string, path: string, expect: number },
 *   runs: Pair[],
 *   unloaded: Probe,
 *   cpu: { entry: CpuPairs, direct: CpuPairs } | null,
 *   summary: ReturnType<typeof summarizePairs> & { unloadedP50: number, unloadedP50AddedMs: number },
 *   memory: { peakMiB: number | null, barePeakMiB: number | null },
 * }} CaseResult
 */
/**
 * The floor against the bare Worker, and zgate's ZappWay keyed request against the floor
 * (side A zgate, side B the floor), pair by pair.
 * @typedef {CpuPairs & { title: string, zgateOverFloor: CpuPairs | null, atOnce: AtOnce | null }} ContractFloor
 */
/**
 * zgate's keyed request, the floor and the bare Worker driven at the same time (run.mjs floorAtOnce): ratios of CPU a request per window.
 * @typedef {{ load: number, windows: number, zgateOverBare: Spread, floorOverBare: Spread, zgateOverFloor: Spread, unexpected: number, runs: import("./cpu-together.mjs").TogetherWindow[] }} AtOnce
 */
/** @typedef {{ rps: number, p50: number, p99: number, unexpected: number }} HotSide */
/**
 * Many keys of one account against one key in each of as many accounts, through zgate.
 * @typedef {{ keys: number, hot: HotSide, spread: HotSide, hotOverSpread: number, p50AddedMs: number, runs: Pair[] }} HotAccount
 */
/** @typedef {import("./guard-driver.mjs").RunAnswer} GuardRun */
/**
 * One load on the guard alone: admissions per second and the latency of each (medians over rounds).
 * @typedef {{ id: string, title: string, perSecond: number, p50: number, p99: number, refusedOrFailed: number, runs: GuardRun[] }} GuardMode
 */
/**
 * The AccountGuard-alone measurement, or why it failed.
 * @typedef {{ concurrency: number, duration: number, peakMiB: number | null, modes: GuardMode[], error?: undefined }
 *   | { error: string, peakMiB?: undefined, modes?: undefined }} GuardResult
 */
/** @typedef {{ name: string, measured: string, met: boolean }} Target */
/**
 * What a run was told (run.mjs: the environment's BENCH_* settings).
 * @typedef {{
 *   duration: number,
 *   warmup: number,
 *   connections: number,
 *   pairs: number,
 *   probeDuration: number,
 *   guardDuration: number,
 *   cpuRequests: number,
 *   togetherWindows: number,
 *   sampleMs: number,
 *   windowSeconds: number,
 *   maxLoad: number,
 *   loadWait: number,
 *   storage: "tmpfs" | "disk",
 * }} BenchConfig
 */
/**
 * @typedef {{
 *   schema: "zgate-bench/1",
 *   smoke: boolean,
 *   machine: ReturnType<typeof machineInfo> & { loadAverageBefore: number[], loadAverageAfter: number[] },
 *   config: BenchConfig,
 *   timing: { totalSeconds: number, plannedMeasureSeconds: number },
 *   baseline: { rps: number, p50: number, p99: number, unloadedP50: number },
 *   cases: CaseResult[],
 *   contractFloor: ContractFloor,
 *   hotAccount: HotAccount,
 *   guard: GuardResult,
 *   memory: { bare: { peakMiB: number | null }, zgate: { peakMiB: number | null }, guard?: { peakMiB: number | null } },
 *   targets: Target[],
 *   outFile: string,
 * }} Results
 */

/**
 * Per-case figures: medians over the case's runs, ratios taken pair by pair.
 * @param {Pair[]} pairs
 */
export function summarizePairs(pairs) {
  const a = pairs.map((p) => p.a);
  const ratios = pairs.map((p) => p.a.rps / p.b.rps);
  return {
    rps: round(median(a.map((r) => r.rps)), 1),
    p50: round(median(a.map((r) => r.p50)), 3),
    p99: round(median(a.map((r) => r.p99)), 3),
    baselineRps: round(median(pairs.map((p) => p.b.rps)), 1),
    rpsRatio: round(median(ratios), 3),
    rpsRatioRange: /** @type {[number, number]} */ ([round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)]),
    p50AddedMs: round(median(pairs.map((p) => p.a.p50 - p.b.p50)), 3),
    p99AddedMs: round(median(pairs.map((p) => p.a.p99 - p.b.p99)), 3),
    unexpected: round(Math.max(...a.map((r) => r.unexpected)), 4),
    errors: a.reduce((n, r) => n + r.errors + r.timeouts, 0),
  };
}

// Issue 27's CPU targets: keyed CPU per request against the bare Worker's, and zgate's own over the contract floor.
const CPU_RATIO_TARGET = 2.0;
const OWN_CPU_TARGET_MS = 0.05;
// CPU figures count only from pairs each started at a 1-minute load average below this (BENCH_MAX_LOAD waits for it).
const QUIET_LOAD = 0.5;

/** @param {CpuPairs} c What the pairs' load says of their figures. */
const quiet = (c) =>
  `load at the pairs ${c.pairs.map((p) => p.load).join(", ")}` +
  (c.pairs.every((p) => p.load < QUIET_LOAD) ? "" : `: not all < ${QUIET_LOAD}, rerun in a quiet window (BENCH_MAX_LOAD=${QUIET_LOAD})`);

/**
 * The issue's targets, judged (reported, never asserted); `floor`: the contract floor's CPU pairs (run.mjs floorPhase).
 * @param {CaseResult[]} cases
 * @param {ContractFloor | undefined} floor
 * @returns {Target[]}
 */
export function judgeTargets(cases, floor) {
  /** @type {Partial<Record<string, CaseResult>>} */
  const byId = Object.fromEntries(cases.map((c) => [c.id, c]));
  /** @type {Target[]} */
  const targets = [];
  // The full keyed path: the ZSky poll (key + guard + job ownership) and the plain keyed forward.
  for (const id of ["zsky_key", "zappway_key"]) {
    const keyedCase = byId[id];
    if (!keyedCase) continue;
    const keyed = keyedCase.summary;
    targets.push({
      name: `${id}: keeps >= 80% of bare pass-through throughput`,
      measured: `${pct(keyed.rpsRatio)} (pairs ${pct(keyed.rpsRatioRange[0])}..${pct(keyed.rpsRatioRange[1])})`,
      met: keyed.rpsRatio >= 0.8,
    });
    // The steering figures: CPU per request of the workerd process, over a fixed request
    // count, with requests sent straight to the user Worker (Miniflare's entry worker's
    // fixed cost is on both sides and would flatter the ratios). Entry-route figure shown too.
    const cpu = keyedCase.cpu;
    if (cpu) {
      targets.push({
        name: `${id}: keeps >= 80% of bare throughput, past the entry worker (fixed request count)`,
        measured: `${pct(cpu.direct.rpsRatio.median)} (pairs ${pct(cpu.direct.rpsRatio.range[0])}..${pct(cpu.direct.rpsRatio.range[1])}; via entry ${pct(cpu.entry.rpsRatio.median)})`,
        met: cpu.direct.rpsRatio.median >= 0.8,
      });
      targets.push({
        name: `${id}: <= ${CPU_RATIO_TARGET}x the bare Worker's CPU per request, past the entry worker`,
        measured:
          `${times(cpu.direct.cpuRatio.median)} (pairs ${times(cpu.direct.cpuRatio.range[0])}..${times(cpu.direct.cpuRatio.range[1])}; ` +
          `${fixed(cpu.direct.cpuMsPerRequest, 3)} vs ${fixed(cpu.direct.bareCpuMsPerRequest, 3)} ms; via entry ${times(cpu.entry.cpuRatio.median)}` +
          `${floor ? `; the contract floor alone: ${times(floor.cpuRatio.median)}` : ""}; ${quiet(cpu.direct)})`,
        met: cpu.direct.cpuRatio.median <= CPU_RATIO_TARGET,
      });
      // zgate's own work past what the contract requires: the keyed forward against the floor,
      // which sends the same request, in pairs of their own (each pair's difference).
      const paired = floor?.zgateOverFloor;
      if (paired && id === "zappway_key") {
        const own = spread(paired.pairs.map((p) => p.a.cpuMsPerRequest - p.b.cpuMsPerRequest));
        targets.push({
          name: `${id}: zgate's own CPU over the contract floor <= ${OWN_CPU_TARGET_MS} ms a request`,
          measured:
            `${fixed(own.median, 3)} ms (pairs ${fixed(own.range[0], 3)}..${fixed(own.range[1], 3)}; ${fixed(paired.cpuMsPerRequest, 3)} vs the floor's ` +
            `${fixed(paired.bareCpuMsPerRequest, 3)} ms, ${times(paired.cpuRatio.median)}; ${quiet(paired)})`,
          met: own.median <= OWN_CPU_TARGET_MS,
        });
      }
    }
    // At 50 connections p50 is mostly queueing (Little's law: connections / throughput),
    // so "adds at most 1 ms" is judged on the unloaded pair; the loaded figure is shown too.
    targets.push({
      name: `${id}: adds <= 1 ms to p50 (unloaded, 1 connection)`,
      measured: `${signed(keyed.unloadedP50AddedMs)} ms (at ${"full load"}: ${signed(keyed.p50AddedMs)} ms)`,
      met: keyed.unloadedP50AddedMs <= 1,
    });
  }
  // Same product, route and key path: only the guard's verdict differs.
  const [admittedCase, refusedCase] = [byId.zappway_key, byId.refused_429];
  if (admittedCase && refusedCase) {
    const [admitted, refused] = [admittedCase.summary, refusedCase.summary];
    targets.push({
      name: "429 path is cheaper than the admitted path (ZappWay agents, same route)",
      measured:
        `429: ${pct(refused.rpsRatio)} of bare, unloaded p50 ${refused.unloadedP50.toFixed(2)} ms; ` +
        `admitted: ${pct(admitted.rpsRatio)} of bare, unloaded p50 ${admitted.unloadedP50.toFixed(2)} ms`,
      met: refused.rpsRatio > admitted.rpsRatio && refused.unloadedP50 < admitted.unloadedP50,
    });
    const [rc, ac] = [refusedCase.cpu?.direct, admittedCase.cpu?.direct];
    if (rc && ac) {
      targets.push({
        name: "429 costs less CPU per request than an admit (ZappWay agents, past the entry worker)",
        measured: `429: ${fixed(rc.cpuMsPerRequest, 3)} ms (${times(rc.cpuRatio.median)} bare); admitted: ${fixed(ac.cpuMsPerRequest, 3)} ms (${times(ac.cpuRatio.median)} bare)`,
        met: rc.cpuMsPerRequest < ac.cpuMsPerRequest,
      });
    }
  }
  return targets;
}

// A figure that is not there: none measured (null), or the median of nothing (NaN).
/** @typedef {number | null | undefined} Figure */
/**
 * @param {Figure} x
 * @returns {x is number}
 */
function present(x) {
  return x !== null && x !== undefined && !Number.isNaN(x);
}
/** @type {(x: Figure) => string} */
const signed = (x) => (!present(x) ? "n/a" : `${x >= 0 ? "+" : ""}${x.toFixed(2)}`);
/** @type {(x: Figure) => string} */
const times = (x) => (!present(x) ? "n/a" : `${x.toFixed(2)}x`);
/** @type {(x: Figure) => string} */
const pct = (x) => (!present(x) ? "n/a" : `${(x * 100).toFixed(0)}%`);
/** @type {(x: Figure, d?: number) => string} */
const fixed = (x, d = 2) => (!present(x) ? "-" : x.toFixed(d));
/** @type {(x: Figure) => string} */
const mib = (x) => (!present(x) ? "-" : x.toFixed(0));

/**
 * A plain-text table; every column left-aligned except numbers.
 * @param {string[]} headers
 * @param {(string | number)[][]} rows
 */
export function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  /** @type {(cells: (string | number)[]) => string} */
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0))).join("  ");
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** @param {Results} results */
export function printReport(results) {
  /** @type {string[]} */
  const out = [];
  const { machine, config } = results;
  out.push("");
  out.push(`zgate bench — ${machine.cpuModel}, ${machine.cores} cores, node ${machine.node}, workerd ${machine.workerd}`);
  out.push(
    `${config.connections} connections, ${config.duration} s runs after ${config.warmup} s warm-up, ${config.pairs} A/B pair(s) per case, ` +
      `local storage on ${config.storage}, load average before ${machine.loadAverageBefore?.[0] ?? "?"}` +
      `${results.smoke ? "  [SMOKE: figures are not meaningful]" : ""}`,
  );
  out.push("");
  const b = results.baseline;
  const rows = [
    [
      "bare pass-through (baseline)",
      fixed(b.rps, 0),
      fixed(b.p50),
      fixed(b.p99),
      "100%",
      "",
      "",
      fixed(b.unloadedP50),
      "",
      mib(results.memory.bare?.peakMiB),
      "",
    ],
    ...results.cases.map((c) => {
      const s = c.summary;
      const flag = s.unexpected > 0.01 || s.errors > 0 ? `!${pct(s.unexpected)} off-status, ${s.errors} errors` : "";
      return [
        c.title,
        fixed(s.rps, 0),
        fixed(s.p50),
        fixed(s.p99),
        pct(s.rpsRatio),
        `${pct(s.rpsRatioRange[0])}..${pct(s.rpsRatioRange[1])}`,
        signed(s.p50AddedMs),
        fixed(s.unloadedP50),
        signed(s.unloadedP50AddedMs),
        mib(c.memory?.peakMiB),
        flag,
      ];
    }),
  ];
  const headers = ["case", "req/s", "p50 ms", "p99 ms", "vs bare", "pair range", "p50 +ms", "1-conn p50", "1-conn +ms", "workerd MiB", ""];
  out.push(table(headers, rows));
  out.push("");
  out.push(
    `req/s, p50, p99: medians over the case's runs at ${config.connections} connections. vs bare: median over pairs of case req/s / bare req/s`,
  );
  out.push(
    "(the bare Worker sent the same request in the run right after). p50 +ms: same, for p50. 1-conn: the same, from short unloaded pairs at 1 connection.",
  );
  out.push("workerd MiB: VmHWM of the workerd process serving side A, read after the case. It only grows over the bench: V8 lets garbage");
  out.push(
    "pile up while memory is plentiful, so it tracks requests served more than the Worker's working set (the bare row: its process at the end).",
  );
  const withCpu = results.cases.flatMap((c) => (c.cpu ? [{ title: c.title, cpu: c.cpu }] : []));
  if (withCpu.length) {
    /** @type {(s: Spread, f: (x: Figure) => string) => string} */
    const range = (s, f) => `${f(s.range[0])}..${f(s.range[1])}`;
    out.push("");
    out.push(
      `workerd CPU per request (${config.cpuRequests} requests per run, ${config.connections} connections, ${config.pairs} A/B pair(s)):`,
    );
    out.push(
      table(
        ["case", "route", "CPU ms/req", "bare ms/req", "CPU x bare", "pair range", "req/s vs bare", "pair range"],
        withCpu.flatMap((c) =>
          /** @type {const} */ (["direct", "entry"]).map((route) => {
            const x = c.cpu[route];
            return [
              c.title,
              route,
              fixed(x.cpuMsPerRequest, 3),
              fixed(x.bareCpuMsPerRequest, 3),
              times(x.cpuRatio.median),
              range(x.cpuRatio, times),
              pct(x.rpsRatio.median),
              range(x.rpsRatio, pct),
            ];
          }),
        ),
      ),
    );
    out.push("direct: straight to the user Worker's socket (Miniflare unsafeDirectSockets); entry: through Miniflare's entry worker.");
    out.push("CPU: user + system time of each side's workerd process(es), /proc/<pid>/stat (10 ms ticks), over the run.");
    const f = results.contractFloor;
    if (f) {
      out.push(
        `contract floor (bench/contract-floor.mjs: only the per-request work zgate's contract requires), ZappWay keyed GET, direct: ` +
          `${fixed(f.cpuMsPerRequest, 3)} ms vs bare ${fixed(f.bareCpuMsPerRequest, 3)} ms, ${times(f.cpuRatio.median)} (${range(f.cpuRatio, times)}), ` +
          `req/s ${pct(f.rpsRatio.median)} of bare (${range(f.rpsRatio, pct)})`,
      );
      const z = f.zgateOverFloor;
      if (z) {
        out.push(
          `zgate's ZappWay keyed GET against the floor, direct, in pairs of their own: ${fixed(z.cpuMsPerRequest, 3)} ms vs ` +
            `${fixed(z.bareCpuMsPerRequest, 3)} ms, ${times(z.cpuRatio.median)} (${range(z.cpuRatio, times)})`,
        );
      }
      const t = f.atOnce;
      if (t) {
        out.push(
          `driven at once, ${t.windows} windows (ratios of CPU a request per window, median (lowest..highest)): zgate ${times(t.zgateOverBare.median)} ` +
            `the bare Worker's (${range(t.zgateOverBare, times)}), the floor ${times(t.floorOverBare.median)} (${range(t.floorOverBare, times)}), ` +
            `zgate ${times(t.zgateOverFloor.median)} the floor's (${range(t.zgateOverFloor, times)})`,
        );
      }
    }
  }
  if (results.hotAccount) {
    const h = results.hotAccount;
    out.push("");
    out.push(`One hot account through zgate (GET /zappway/api/v1/agents, ${h.keys} keys, one per connection):`);
    out.push(
      table(
        ["load", "req/s", "p50 ms", "p99 ms"],
        [
          [`${h.keys} keys of ONE account (one guard object)`, fixed(h.hot.rps, 0), fixed(h.hot.p50), fixed(h.hot.p99)],
          [`${h.keys} keys in ${h.keys} accounts (${h.keys} objects)`, fixed(h.spread.rps, 0), fixed(h.spread.p50), fixed(h.spread.p99)],
        ],
      ),
    );
    out.push(`hot / spread throughput (median of pairs): ${pct(h.hotOverSpread)}; p50 hot - spread: ${fixed(h.p50AddedMs)} ms`);
  }

  const g = results.guard;
  if (g.error !== undefined) {
    out.push("");
    out.push(`AccountGuard alone: FAILED (${g.error})`);
  } else {
    out.push("");
    out.push(
      `AccountGuard alone (admit RPCs from a driver Worker, ${g.concurrency} concurrent callers, ${g.duration} s runs, 1 ms clock):`,
    );
    out.push(
      table(
        ["load", "admits/s", "p50 ms", "p99 ms"],
        g.modes.map((m) => [m.title, fixed(m.perSecond, 0), fixed(m.p50, 0), fixed(m.p99, 0)]),
      ),
    );
  }

  out.push("");
  out.push("Targets from issue 8 (reported, not asserted):");
  for (const t of results.targets) out.push(`  [${t.met ? "met" : "MISSED"}] ${t.name}: ${t.measured}`);
  out.push("");
  out.push(
    `Memory (workerd VmHWM): bare ${mib(results.memory.bare?.peakMiB)} MiB, zgate ${mib(results.memory.zgate?.peakMiB)} MiB` +
      `${results.memory.guard ? `, guard bench ${mib(results.memory.guard.peakMiB)} MiB` : ""}`,
  );
  out.push(`Took ${results.timing.totalSeconds.toFixed(1)} s. Results: ${results.outFile}`);
  console.log(out.join("\n"));
}

/**
 * Writes the results file atomically (a half-written file is never seen as the result).
 * @param {string} path
 * @param {object} results
 */
export function writeResults(path, results) {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(tmp, path);
}

/**
 * The machine and the versions a result was measured with.
 * @param {string} root
 */
export function machineInfo(root) {
  const cpuinfo = safeRead("/proc/cpuinfo");
  /** @type {(pkg: string) => string | null} */
  const version = (pkg) => JSON.parse(safeRead(join(root, "node_modules", pkg, "package.json")) || "{}").version ?? null;
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: availableParallelism(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    workerd: version("workerd"),
    miniflare: version("miniflare"),
    autocannon: version("autocannon"),
    date: new Date().toISOString(),
  };
}

/** @param {string} path */
function safeRead(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
