// The cost targets the redesign is held to, per case of `npm run bench:cost`, and the
// row budget they leave hot keyed traffic. Reported beside the measured figures by
// bench/cost.mjs; the row budget is asserted by test/node/cost-smoke.test.ts.
import { loadPrices } from "./cost-model.mjs";

// Its types as importers see them: cost-budget.d.mts, which every export here satisfies.
/** @typedef {typeof import("./cost-budget.mjs")} Declared */

/**
 * Every case of `npm run bench:cost`, in the order it reports them.
 * @satisfies {Declared["COST_CASES"]}
 */
export const COST_CASES = [
  "zappway_key_hot",
  "zappway_key_cold",
  "zakgt_key_hot",
  "zakgt_key_cold",
  "zsky_poll_hot",
  "zakgt_jwt_hot",
  "public_repeat",
  "public_new_address",
  "refused_429",
  "unknown_key",
  "zsky_job",
  "zsky_job_high_limit",
  "default_key_1rps",
  "default_key_1rps_far",
];

/**
 * The cases whose unit is a ZSky job (generate, 3 polls, download; cost-cases.mjs JOB_CASES), not a request.
 * @satisfies {Declared["JOB_CASE_IDS"]}
 */
export const JOB_CASE_IDS = ["zsky_job", "zsky_job_high_limit"];
/** @type {Declared["isJobCase"]} */
export const isJobCase = (id) => JOB_CASE_IDS.includes(id);

/**
 * Issue 26's baseline, $ per million requests: default_key_1rps (one ZappWay Free key at
 * 1 req/s, two isolates, 60 s windows) measured with zgate as on main at 942e635 (usage
 * in per-account usage logs), before any change of the lease policy: the median of 3 runs
 * ($1.75-$1.77). A lease policy that renews ahead of need may cost at most 1.25 times
 * this, renewals included.
 * @satisfies {Declared["DEFAULT_KEY_BASELINE"]}
 */
export const DEFAULT_KEY_BASELINE = 1.759;

/**
 * Dollars per million units (requests; jobs for zsky_job, excluding result storage).
 * @satisfies {Declared["TARGETS"]}
 */
export const TARGETS = {
  zappway_key_hot: 0.5,
  zakgt_key_hot: 0.5,
  zsky_poll_hot: 0.5,
  zakgt_jwt_hot: 0.45,
  public_repeat: 0.45,
  refused_429: 0.4,
  unknown_key: 0.35,
  zsky_job: 8,
  zsky_job_high_limit: 8,
  default_key_1rps: Math.round(1.25 * DEFAULT_KEY_BASELINE * 100) / 100,
  // The same key far from its guard: renewals included, within the same 1.25 times.
  default_key_1rps_far: Math.round(1.25 * DEFAULT_KEY_BASELINE * 100) / 100,
};

/**
 * A new client address: nothing kept once its windows have passed (share of addresses whose guard still holds data).
 * @satisfies {Declared["KEPT_PER_NEW_ADDRESS"]}
 */
export const KEPT_PER_NEW_ADDRESS = 0;

/**
 * The hot keyed cases: one credential calling often enough for guard leases.
 * @satisfies {Declared["HOT_KEYED"]}
 */
export const HOT_KEYED = ["zappway_key_hot", "zakgt_key_hot", "zsky_poll_hot"];

const { cloudflare } = loadPrices();
/**
 * Rows written (guard SQLite and D1 together) a hot keyed request may cost:
 * ($0.50/M target - $0.30/M Workers request) / $1.00/M per row written = 0.2 rows.
 * The guard call, CPU and reads share those $0.20/M too, but are small once leases batch
 * the guard (one $0.15/M guard call per dozens of requests; CPU costs $0.02/M per ms).
 */
/** @satisfies {Declared["ROWS_WRITTEN_PER_HOT_REQUEST"]} */
export const ROWS_WRITTEN_PER_HOT_REQUEST = (TARGETS.zappway_key_hot - cloudflare.workers.requests) / cloudflare.durableObjects.rowsWritten;

/**
 * On since the redesign (window covers, batched usage) landed: `npm test` fails if hot keyed traffic writes more.
 * @satisfies {Declared["ROW_BUDGET_ENFORCED"]}
 */
export const ROW_BUDGET_ENFORCED = true;

/**
 * Hot keyed cases of a bench:cost result that write more rows per request than the budget (empty: within it).
 * @type {Declared["overBudget"]}
 */
export function overBudget(result) {
  return result.cases
    .filter((c) => HOT_KEYED.includes(c.id))
    .map((c) => ({ id: c.id, rowsWritten: c.median.counts.rowsWritten, budget: ROWS_WRITTEN_PER_HOT_REQUEST }))
    .filter((c) => c.rowsWritten > c.budget);
}
