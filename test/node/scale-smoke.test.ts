import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("../..", import.meta.url).pathname;

interface PerRequest {
  guardCalls: number;
  usageLogCalls: number;
  addressIndexCalls: number;
  kvReads: number;
}
interface ObjectFigures {
  name: string | null;
  calls: number;
  seconds: number;
  mean: number;
  max: number;
  byMethod: Record<string, number>;
}
interface CaseResult {
  requests: number;
  statuses: Record<string, number>;
  perRequest: PerRequest;
  callsByBinding: Record<string, number>;
  usageCalls: { appends: number; rows: number; calls: number };
  taggedGuardCalls: { before: number; after: number };
  load: { offeredRps: number; sentRps: number };
}
interface HotCase extends CaseResult {
  load: CaseResult["load"];
  limit: number;
  hotGuard: ObjectFigures | null;
  exactness: { limit: number; admitted: number; exactAdmits: number; mostInOneWindow: number; held: boolean };
  revoke: { status: number; returnMs: number; sentAfter: number; admittedAfter: number; statusesAfter: Record<string, number> };
}
interface AccountsCase extends CaseResult {
  accounts: number;
  usageLogs: { objects: number };
  addressIndexes: { objects: number };
}
interface ScaleResult {
  smoke: boolean;
  config: { isolates: number; isolateRps: number; caseSeconds: number; keys: number; loads: number[] };
  summary: { hot: { share: number; atTargetIsolates: { median: number | null } }[] };
  runs: { hot: HotCase[]; accounts: AccountsCase }[];
}

/**
 * `npm run bench:scale` in smoke mode (2 isolates at 20 req/s, 3 s cases): the harness
 * works end to end, and what it counts adds up to what it sent. Guard calls per request
 * are whatever zgate's leases do today, so only what holds under any lease policy is
 * asserted: every request answered, every call the isolates answered found in a usage
 * log's append, the hot account's calls counted on its own guard, the limit held and
 * nothing admitted after a revoke returned.
 */
describe("npm run bench:scale (smoke)", () => {
  const dir = mkdtempSync(join(tmpdir(), "zgate-scale-"));
  const out = join(dir, "scale.json");
  let result: ScaleResult;

  beforeAll(async () => {
    await run("node", [join(root, "bench", "scale.mjs")], {
      cwd: root,
      env: { ...process.env, BENCH_SCALE_SMOKE: "1", BENCH_OUT: out },
      timeout: 110_000,
    });
    result = JSON.parse(readFileSync(out, "utf8")) as ScaleResult;
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("sends what it offers, and every answer's call reaches the account's usage log", () => {
    expect(result.smoke).toBe(true);
    const { isolates, isolateRps, caseSeconds } = result.config;
    const [run1] = result.runs;
    const cases: CaseResult[] = [...run1!.hot, run1!.accounts];
    for (const c of cases) {
      expect(c.requests).toBe(Math.round(isolates * isolateRps * caseSeconds));
      expect(Object.values(c.statuses).reduce((a, b) => a + b, 0)).toBe(c.requests);
      expect(c.statuses["0"] ?? 0, "requests that got no answer").toBe(0);
      // Every keyed call the isolates answered (admitted, refused, or of a key revoked) reached its account's usage log once.
      expect(c.usageCalls.calls).toBe(c.requests);
      expect(c.usageCalls.appends).toBeGreaterThan(0);
      // The usage logs' calls are those appends, and the revoke's reading of its key's last use.
      expect(c.callsByBinding.USAGE_LOG! - c.usageCalls.appends).toBeGreaterThanOrEqual(0);
      expect(c.callsByBinding.USAGE_LOG! - c.usageCalls.appends).toBeLessThanOrEqual(2);
      expect(c.perRequest.guardCalls).toBeGreaterThan(0);
      expect(c.perRequest.kvReads).toBeGreaterThan(0);
    }
    expect(run1!.accounts.usageLogs.objects).toBe(run1!.accounts.accounts);
    expect(run1!.accounts.addressIndexes.objects).toBeGreaterThan(0);
  });

  it("counts the hot account's guard calls on its own object, per second, and multiplies them out", () => {
    for (const c of result.runs[0]!.hot) {
      const guard = c.hotGuard!;
      expect(guard.name).toMatch(/^zappway:scale_r0_hot\d+$/);
      // Its calls over the whole case (with the settle) are at least those of its whole seconds.
      expect(guard.calls).toBeGreaterThanOrEqual(guard.mean * guard.seconds);
      expect(guard.max).toBeGreaterThanOrEqual(guard.mean);
      // Counted per object (the host's view) and per request (bench:distance's, by the requests' tag), the
      // account's guard calls agree but for the revoke's own (it carries no tag); no other guard took one
      // but the admin guard, for the revoke's credential.
      const tagged = c.taggedGuardCalls.before + c.taggedGuardCalls.after;
      expect(tagged).toBeGreaterThan(0);
      expect(guard.calls - tagged).toBeGreaterThanOrEqual(1);
      expect(guard.calls - tagged).toBeLessThanOrEqual(3);
      expect(c.callsByBinding.ACCOUNT_GUARD! - guard.calls).toBeLessThanOrEqual(2);
    }
    for (const h of result.summary.hot) expect(h.atTargetIsolates.median).toBeGreaterThan(0);
  });

  it("holds the limit at 80% and 125% of it, and admits nothing of a key sent after its revoke returned", () => {
    const [at80, at125] = result.runs[0]!.hot;
    for (const c of [at80!, at125!]) {
      expect(c.exactness.held).toBe(true);
      expect(c.exactness.mostInOneWindow).toBeLessThanOrEqual(c.limit);
      expect(c.revoke.status).toBe(200);
      expect(c.revoke.sentAfter).toBeGreaterThan(0);
      expect(c.revoke.admittedAfter).toBe(0);
      expect(c.revoke.statusesAfter["401"]).toBe(c.revoke.sentAfter);
    }
    // Below its limit a 429 comes only while the other isolates hold room in leases and
    // shares (limits.md, "An early 429": at most (I - 1) x 2 x ceil(N/8) of it; on a loaded
    // machine a smoke case's requests bunch, and one was refused 3 times); past it, some are.
    const parked = (result.config.isolates - 1) * 2 * Math.ceil(at80!.limit / 8);
    expect(at80!.statuses["429"] ?? 0).toBeLessThanOrEqual(parked);
    expect(at125!.statuses["429"]).toBeGreaterThan(0);
  });
});
