import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { retryAfterSeconds } from "../limits/calendar";
import {
  leasable,
  leaseTag,
  shareable,
  leaseTagsOf,
  MAX_LEASE_MS,
  MAX_LEASE_TOKENS,
  ADDRESS_GUARD_PREFIX,
  type AcceptedJob,
  type AdminBudgetTrip,
  type AdminLoginVerdict,
  type AdmitDecision,
  type AdmitRequest,
  type ConsoleSessionRecord,
  type GuardedKey,
  type JobView,
  type KeyOutboxEntry,
  type KeyOutboxFacts,
  type LeaseRequest,
  type LeaseTag,
  type OverageSettings,
  type ShareAnswer,
  type ShareRenewal,
  type Vouched,
  type WindowReport,
} from "../limits/guard-protocol";
import { countedWindows, subjectIds, type CountedWindow } from "../limits/policies";
import type { AccountPlan, GenerationLimits, KeyLimitOverride } from "../limits/types";
import { deliverKeyOutbox } from "../keys/key-outbox";
import { born } from "../keys/guard-birth";
import { AccountPlanStore } from "./account-plan";
import { AdminLogins } from "./admin-logins";
import { ConsoleSessions } from "./console-sessions";
import { DecisionOutbox, OUTBOX_GRACE_MS } from "./decision-outbox";
import { GenerationLedger } from "./generation-ledger";
import { KeyTable, type StoredKey } from "./key-table";
import { LeaseRegistry } from "./lease-registry";
import { PaceLog } from "./pace-log";
import { ADDRESS_GUARD_MIGRATIONS, GUARD_MIGRATIONS, hasAddressSchema, migrate } from "./schema";
import { SlidingLog } from "./sliding-log";
import * as clock from "../util/clock";

const REFUSED: AdmitDecision = { allow: false, refusal: "credential" };
/**
 * An address guard's alarm deletes the rows of windows that passed, then comes back for
 * the rest no sooner than this: a busy one runs every 10 s or so, not once per address.
 */
const SWEEP_EVERY_MS = 10_000;
/**
 * Longest a poll of a job not (yet) the account's waits for a generate call's settlement:
 * the edge sends it as it answers the submitter, so it arrives within a round trip of
 * that answer; a poll that still finds no job is counted and answered 404 as before.
 */
const SETTLEMENT_WAIT_MS = 2_000;
/**
 * Guard KV: `session_tier:<user id>` -> the tier the user's sessions last presented (their
 * verified tier claim; absent: none), for the user's keys, whose calls carry no claim.
 */
const sessionTierEntry = (userId: string) => `session_tier:${userId}`;
/** Guard KV key prefix: `links_refused:<key id>` -> when the key's result links were refused (ms). */
const LINKS_REFUSED = "links_refused:";
/**
 * A key rolled with a grace period: the head of its chain (the one key of the chain that
 * is no grace key), whose counters it counts in until it expires (rollKey), in the
 * object's synchronous KV. Always the head, never a key between: a hand-over re-points
 * every entry naming the old head (handOver). Beside the `keys` row rather than a column
 * of it: a schema step is run by every guard, and only rolled keys ever have this.
 */
const COUNTS_AS = "counts_as:";
/** Guard KV: when this account guard's birth read its keys from D1 (keys/guard-birth.ts); absent: not yet. */
const BORN = "born";
const countsAsEntry = (keyId: string) => `${COUNTS_AS}${keyId}`;
// Jobs past retention are retired by the alarm in batches of this many (one R2 delete
// call takes at most 1000 keys), woken on the hour: admission already refuses them by age
// to the millisecond, so the alarm only has to reclaim their rows and results, and one
// wake-up an hour serves a busy account's whole hour of jobs.
const RETIRE_BATCH = 1000;
const RETIRE_EVERY_MS = 3_600_000;
const retireWakeAt = (retiresAt: number) => Math.ceil(retiresAt / RETIRE_EVERY_MS) * RETIRE_EVERY_MS;

/** What a mutation changed, in the terms leases are granted on (guard-protocol.ts). */
interface Affected {
  keys?: string[];
  tokens?: string[];
  users?: string[];
  jobs?: string[];
  /** The account's plan or limits. */
  account?: boolean;
}

function tagsOf(affected: Affected): LeaseTag[] {
  return [
    ...(affected.account ? [leaseTag.account] : []),
    ...(affected.keys ?? []).map(leaseTag.key),
    ...(affected.tokens ?? []).map(leaseTag.token),
    ...(affected.users ?? []).map(leaseTag.user),
    ...(affected.jobs ?? []).map(leaseTag.job),
  ];
}
/**
 * A lease takes at most this share (rounded up) of any window it counts in: what one
 * isolate may hold idle while another is refused (docs/limits.md, "early 429").
 */
const LEASE_SHARE_OF_LIMIT = 1 / 8;

/**
 * One SQLite-backed Durable Object per account (`<product>:<account>`; client addresses'
 * windows are counted in 256 shared ones per scope, `ip|<product>|<shard>`). Everything mutable
 * about the account lives here: its keys' status, revoked sessions, sliding windows, ZSky
 * allowances, job slots and suspensions. So "may this request proceed?" is answered by
 * one single-threaded object in one synchronous turn: a revocation applies to the very
 * next request wherever it lands, and no race can admit more than a limit allows. Every
 * request that needs a decision makes one `admit` call, or spends a token of a lease an
 * earlier call granted (lease-registry.ts: still exact, revocation still instant).
 */
export class AccountGuard extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly windows: SlidingLog;
  private readonly ledger: GenerationLedger;
  private readonly leases: LeaseRegistry;
  /** How often each subject's isolates ask about it: the gap hinted to an isolate new to it. */
  private readonly paces = new PaceLog();
  private readonly plan: AccountPlanStore;
  private readonly keys: KeyTable;
  /** Address guards: when the alarm this instance set will sweep (null: none set, or it found nothing left). */
  private sweepAt: number | null = null;
  /**
   * A client address's guard: it has a schema of its own (schema.ts). Known by its name
   * (ctx.id.name, given to objects reached through idFromName), or, where the name is
   * missing (an alarm after a restart), by the schema its storage already has.
   */
  private readonly address: boolean;
  /**
   * Parsed key rows, in memory: this object is the only writer of its storage, so the
   * map stays exact as long as every write below drops the entries it changes.
   */
  private readonly keyRows = new Map<string, StoredKey>();
  /** The users' session tiers as stored (null: none), read once each: this object is their only writer. */
  private readonly sessionTiers = new Map<string, string | null>();
  /** Account guards: key decisions whose record in D1 and the audit log is not acknowledged yet. */
  private readonly decisions?: DecisionOutbox;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    const name = ctx.id.name;
    this.address = name !== undefined ? name.startsWith(ADDRESS_GUARD_PREFIX) : hasAddressSchema(this.sql);
    migrate(ctx.storage, this.address ? ADDRESS_GUARD_MIGRATIONS : GUARD_MIGRATIONS);
    this.windows = new SlidingLog(this.sql);
    this.ledger = new GenerationLedger(this.sql);
    this.leases = new LeaseRegistry(this.sql);
    this.plan = new AccountPlanStore(this.sql);
    this.keys = new KeyTable(this.sql);
    if (!this.address) {
      this.decisions = new DecisionOutbox(this.sql);
      // Entries kept by calls that may have died with the previous instance: delivered at once.
      if (this.decisions.inheritedAny) void this.ctx.storage.setAlarm(clock.now());
      // Its first call ever: nothing runs here before the account's keys are read (a failure resets the object: fail closed).
      if (name?.includes(":") && ctx.storage.kv.get(BORN) === undefined) void ctx.blockConcurrencyWhile(() => this.beBorn(name));
    }
  }

  /**
   * An account guard's birth (keys/guard-birth.ts): registered as existing in D1, it takes
   * the account's keys and settings (plan, overage, a user's sessions revoked) from there,
   * as admin actions left them while it did not exist. A
   * key it knows already (a guard from before account_guards) keeps its row; a revocation
   * D1 has and it lacks is applied, never undone; a key an admin rolled meanwhile counts as
   * the head of its chain of rolls (as rollKey leaves it). No isolate holds a lease of a key
   * this guard never had, so the change waits for nothing.
   */
  private async beBorn(name: string): Promise<void> {
    const split = name.indexOf(":");
    const { keys, settings } = await born(this.env, name, name.slice(0, split), name.slice(split + 1), clock.now());
    const rolledTo = new Map(keys.flatMap((k) => (k.rolledFrom === null ? [] : [[k.rolledFrom, k.keyId] as const])));
    const headOf = (keyId: string): string => (rolledTo.has(keyId) ? headOf(rolledTo.get(keyId)!) : keyId);
    await this.mutate(() => {
      const kv = this.ctx.storage.kv;
      for (const key of keys) {
        if (!this.keys.has(key.keyId)) this.keys.insert(key);
        if (key.revokedAt !== null) this.keys.revoke(key.keyId, key.revokedAt);
      }
      for (const [old, successor] of rolledTo) if (kv.get(countsAsEntry(old)) === undefined) kv.put(countsAsEntry(old), headOf(successor));
      for (const { setting, value } of settings) {
        if (setting === "plan") this.plan.set(value);
        else if (setting === "overage")
          this.ledger.setOverage({ enabled: value.enabled, monthlyCapCents: value.monthlyCapCents }, value.at);
        else
          this.sql.exec(
            "INSERT OR REPLACE INTO session_epochs (user_id, revoked_before_ms) VALUES (?, ?)",
            name.slice(split + 1),
            value.revokedBeforeMs,
          );
      }
      kv.put(BORN, clock.now());
      return { result: undefined, affected: { keys: keys.map((k) => k.keyId) } };
    });
  }

  /**
   * One request's decision. A poll of a job that is not the account's while one of its
   * generate calls awaits settlement waits for that (at most SETTLEMENT_WAIT_MS): the
   * edge settles an accepted submission after answering its caller (off the answer's
   * path), so a caller polling at once may get here first.
   */
  admit(request: AdmitRequest): AdmitDecision | Promise<AdmitDecision> {
    const now = clock.now();
    const gapHint = request.pace && this.paces.note(request.pace, now, true);
    const jobId = request.jobId;
    if (jobId !== undefined && this.ledger.awaitsSettlement(now) && this.ledger.liveJobStatus(jobId, now) === null) {
      return this.afterSettlements(jobId, now + SETTLEMENT_WAIT_MS).then(() => hinted(this.decide(request, false), gapHint));
    }
    return hinted(this.decide(request, false), gapHint);
  }

  /** Until the job is the account's, no settlement is in flight, or `deadline` (guard clock). */
  private async afterSettlements(jobId: string, deadline: number): Promise<void> {
    const timeout = new Promise<void>((resolve) => void clock.after(Math.max(0, deadline - clock.now()), async () => resolve()));
    let timedOut = false;
    void timeout.then(() => (timedOut = true));
    while (!timedOut && this.ledger.awaitsSettlement(clock.now()) && this.ledger.liveJobStatus(jobId, clock.now()) === null) {
      await Promise.race([this.ledger.nextSettlement(), timeout]);
    }
  }

  /**
   * Renews an isolate's leases on this guard in one call (lease-book.ts batches them per
   * guard object): each request is decided as an admission with no request of its own,
   * so its lease is all spare tokens, granted only with room for all of them; a request
   * refused, or granted none, gets no lease and nothing is counted. `returns` are the
   * unspent tokens of the isolate's ended leases.
   */
  renewLeases(requests: AdmitRequest[], returns: NonNullable<LeaseRequest["returns"]>): AdmitDecision[] {
    this.refundLeases(returns);
    for (const { pace } of requests) if (pace) this.paces.note(pace, clock.now(), false);
    return requests.map((request) => this.decide(request, true));
  }

  /**
   * Renews an isolate's shares on this guard (lease-book.ts): each member is vouched for
   * again if its credential may still make its request and counts in the same windows,
   * and the share's next lease is decided like a renewal, on the first member's request
   * (every member's windows are the same). `returns` as for renewLeases.
   */
  renewShares(shares: ShareRenewal[], returns: NonNullable<LeaseRequest["returns"]>): ShareAnswer[] {
    this.refundLeases(returns);
    return shares.map((s) => this.renewShare(s));
  }

  private renewShare({ share, members, want, ttlMs }: ShareRenewal): ShareAnswer {
    const now = clock.now();
    const vouched = members.map((member) => {
      const assessed = this.assess(member, now);
      if ("refused" in assessed || shareOf(member, assessed.windows) !== share) return null;
      return this.vouch({ ...member, join: { ttlMs } }, assessed, now) ?? null;
    });
    const first = vouched.findIndex((v) => v !== null);
    if (first < 0) return { members: vouched };
    return { members: vouched, decision: this.decide({ ...members[first]!, lease: { want, ttlMs } }, true) };
  }

  /**
   * What admission reads before anything is counted: whether the credential may make this
   * request (refused: why not), its key, the account's plan, and the windows it counts in.
   */
  private assess(
    request: AdmitRequest,
    now: number,
  ): { refused: AdmitDecision } | { key?: GuardedKey; accountPlan?: AccountPlan; windows: CountedWindow[] } {
    let key: GuardedKey | undefined;
    if (request.credential) {
      const checked = this.checkCredential(request.credential, now);
      // A key of another product is no credential here: the edge refuses it first (identify), this is the backstop.
      if (checked === null || request.credential.product !== request.product) return { refused: REFUSED };
      key = checked;
      // Decided before anything is counted: a refused request must cost no window, allowance or slot.
      const forbidden = key && forbiddenUse(request, key);
      if (forbidden) return { refused: { allow: false, refusal: "forbidden", message: forbidden } };
    }
    const accountPlan = request.credential ? (this.plan.get() ?? undefined) : undefined;
    const windows = request.windowsElsewhere
      ? []
      : countedWindows(
          request.limits,
          { account: accountPlan, key, tier: request.credential?.tier },
          subjectIds(request.credential, key, request.accountId, request.ip),
        );
    return { key, accountPlan, windows };
  }

  /**
   * Vouches for a credential's use of its isolate's share of these windows, for a request
   * that asked to join one (guard-protocol.ts Vouched): its tags are held for the share's
   * life (never past its key's expiry), so every change to it waits as for a lease.
   */
  private vouch(
    request: AdmitRequest,
    { key, accountPlan, windows }: { key?: GuardedKey; accountPlan?: AccountPlan; windows: CountedWindow[] },
    now: number,
  ): Vouched | undefined {
    const share = request.join && shareOf(request, windows);
    if (!share) return undefined;
    const ms = Math.min(Math.floor(request.join!.ttlMs), MAX_LEASE_MS, key?.expiresAt != null ? key.expiresAt - now : Infinity);
    if (!(ms > 0)) return undefined;
    this.leases.vouch(leaseTagsOf(request), ms);
    return { share, ms, key, accountPlan };
  }

  private decide(request: AdmitRequest, renewal: boolean): AdmitDecision {
    const now = clock.now();
    this.refundLeases(request.lease?.returns ?? []);
    const assessed = this.assess(request, now);
    if ("refused" in assessed) return assessed.refused;
    const { key, accountPlan } = assessed;
    if (request.credential?.via === "jwt" && request.credential.userId !== undefined)
      this.noteSessionTier(request.credential.userId, request.credential.tier ?? null);
    const { limits } = request;
    const counted = assessed.windows.map(({ policy, subject }) => ({
      policy,
      subject,
      state: this.windows.inspect(subject, policy.limit, policy.windowSeconds * 1000, now),
    }));
    // After admission the request itself is counted: a window that was empty resets a full window from now.
    const report = (admitted: boolean): WindowReport[] =>
      counted.map(({ policy, state }) => ({
        name: policy.name,
        limit: policy.limit,
        windowSeconds: policy.windowSeconds,
        remaining: Math.max(0, policy.limit - state.used - (admitted ? 1 : 0)),
        resetSeconds: Math.ceil((admitted && state.used === 0 ? policy.windowSeconds * 1000 : state.retryAfterMs || state.resetMs) / 1000),
      }));

    const generation = limits.generation;
    // The key whose allowances and safety record count: a key in its roll's grace period shares its chain head's.
    const ledgerKey = key && (key.countsAs ?? key.keyId);
    if (generation && ledgerKey) {
      const until = this.ledger.suspendedUntil(ledgerKey, now);
      if (until !== null) {
        return {
          allow: false,
          refusal: "suspended",
          message: "API key suspended",
          retryAfter: retryAfterSeconds(until, now),
          windows: report(false),
        };
      }
    }

    // Every refusal that applies is collected, so Retry-After is the time when all of them have cleared.
    const refusals: { refusal: "rate_limited" | "quota" | "concurrency"; message: string; retryAt: number }[] = counted
      .filter(({ state }) => state.retryAfterMs > 0)
      .map(({ state }) => ({ refusal: "rate_limited", message: "Rate limit exceeded", retryAt: now + state.retryAfterMs }));
    const kind = limits.generates;
    if (generation && kind && key && ledgerKey) {
      const dailyCap = key.limitOverride?.dailyPerKey?.[kind] ?? generation.dailyPerKey[kind];
      for (const r of this.ledger.check(ledgerKey, kind, generation, dailyCap, now)) {
        refusals.push({ refusal: r.reason, message: r.message, retryAt: r.retryAt });
      }
    }
    if (refusals.length > 0) {
      const latest = refusals.reduce((a, b) => (b.retryAt > a.retryAt ? b : a));
      const retryAfter = retryAfterSeconds(latest.retryAt, now);
      // A renewal refused holds nothing: the isolate only goes without a lease.
      const full = !renewal && latest.refusal === "rate_limited";
      const standsMs = full ? this.refusalStands(request, latest.retryAt - now) : undefined;
      const vouched = full ? this.vouch(request, assessed, now) : undefined;
      return { allow: false, refusal: latest.refusal, message: latest.message, retryAfter, windows: report(false), standsMs, vouched };
    }

    const job = request.jobId === undefined ? undefined : this.ledger.liveJobStatus(request.jobId, now);
    const retiresAt = job === undefined ? undefined : (job?.retiresAt ?? null);
    const owned = retiresAt !== null;
    const lease = owned ? this.leaseTerms(request, counted, key, now, retiresAt, renewal) : null;
    if (renewal && !lease)
      return owned
        ? { allow: true, key, accountPlan, windows: report(false) }
        : { allow: false, refusal: "not_found", windows: report(false) };
    const at = lease ? now + lease.ttlMs : now;
    for (const { policy, subject } of counted)
      this.windows.record(subject, policy.limit, policy.windowSeconds * 1000, now, lease?.tokens ?? 1, at);
    if (this.address && counted.length > 0) this.sweepBy(at + Math.max(...counted.map((c) => c.policy.windowSeconds * 1000)));
    // Counted like any call, then refused: another account's job looks exactly like no job.
    if (!owned) return { allow: false, refusal: "not_found", windows: report(true) };
    const reservationId = generation && kind && ledgerKey ? this.ledger.reserve(ledgerKey, kind, generation, now) : undefined;
    const usage = request.wantUsage && generation ? this.ledger.usage(generation, now) : undefined;
    const grant = lease
      ? this.leases.grant(leaseTagsOf(request), lease.ttlMs, {
          at,
          tokens: lease.tokens,
          subjects: counted.map((c) => c.subject),
          spentAtGrant: renewal ? 0 : 1,
          grantedAt: now,
        })
      : undefined;
    const jobStatus = job ? { resultKey: job.resultKey, ended: job.ended } : undefined;
    const vouched = renewal ? undefined : this.vouch(request, assessed, now);
    return { allow: true, key, accountPlan, windows: report(true), reservationId, usage, lease: grant, job: jobStatus, vouched };
  }

  /**
   * How big a lease this admission may become, or null for a single admission.
   */
  private leaseTerms(
    request: AdmitRequest,
    counted: (CountedWindow & { state: { used: number } })[],
    key: GuardedKey | undefined,
    now: number,
    jobRetiresAt: number | undefined,
    renewal: boolean,
  ) {
    const asked = request.lease;
    if (!asked || !leasable(request)) return null;
    let ttlMs = Math.min(Math.floor(asked.ttlMs), MAX_LEASE_MS);
    // Nothing a lease admits may outlive the key, or the job it polls.
    if (key?.expiresAt != null) ttlMs = Math.min(ttlMs, key.expiresAt - now);
    if (jobRetiresAt !== undefined) ttlMs = Math.min(ttlMs, jobRetiresAt - now);
    let tokens = Math.min(Math.floor(asked.want), MAX_LEASE_TOKENS);
    // Never more than the window has room for, and at most a share of its limit: tokens
    // an isolate holds idle refuse other isolates early (never more than that share each).
    for (const { policy, state } of counted) {
      tokens = Math.min(tokens, Math.ceil(policy.limit * LEASE_SHARE_OF_LIMIT), policy.limit - state.used);
    }
    // An admission's lease holds its own request and at least one spare token; a renewal's are all spare.
    return tokens >= (renewal ? 1 : 2) && ttlMs > 0 ? { tokens, ttlMs } : null;
  }

  /**
   * How long an isolate may repeat this full window's refusal without asking. Only time
   * empties a window, so an address's refusal stands until it ends. A credential's could
   * outlive a revoke or a raised limit: it stands no longer than the isolate's lease life,
   * and is held like a lease of no tokens, so a mutation of that credential waits for it.
   */
  private refusalStands(request: AdmitRequest, refusedForMs: number): number | undefined {
    if (!request.credential) return refusedForMs;
    const ms = Math.min(refusedForMs, request.stand ?? 0, MAX_LEASE_MS);
    if (ms <= 0) return undefined;
    this.leases.hold(leaseTagsOf(request), ms);
    return ms;
  }

  /**
   * Un-counts the tokens an isolate did not spend from its leases (each lease once), and
   * counts the spent ones from when the last was spent rather than from the lease's end.
   */
  refundLeases(returns: NonNullable<LeaseRequest["returns"]>): void {
    for (const { id, unspent, lastSpentMs } of returns) {
      const lease = this.leases.takeBack(id, unspent, lastSpentMs);
      if (!lease) continue;
      for (const subject of lease.subjects) {
        if (lease.unspent > 0) this.windows.unrecord(subject, lease.at, lease.unspent);
        if (lease.spent > 0) this.windows.move(subject, lease.at, lease.spentBy, lease.spent);
      }
    }
  }

  /** The key or session, if it may be used now; null otherwise. */
  private checkCredential(credential: NonNullable<AdmitRequest["credential"]>, now: number): GuardedKey | undefined | null {
    if (credential.via === "key") {
      // A key the guard has never registered is refused like a revoked one.
      const key = this.keyRow(credential.keyId ?? "");
      if (!key || key.revokedAt !== null) return null;
      if (key.expiresAt !== null && now >= key.expiresAt) return null;
      return key;
    }
    if (credential.tokenId !== undefined) {
      if (this.sql.exec("SELECT 1 FROM revoked_tokens WHERE jti = ?", credential.tokenId).toArray().length > 0) return null;
    }
    if (credential.userId !== undefined && credential.issuedAt !== undefined) {
      const epoch = this.sql
        .exec<{ revoked_before_ms: number }>("SELECT revoked_before_ms FROM session_epochs WHERE user_id = ?", credential.userId)
        .toArray()[0];
      // The epoch already includes the clock skew (revokeSessions). `iat` has whole-second
      // resolution: a token from the epoch's second is refused, erring on the side of the revocation.
      if (epoch && credential.issuedAt * 1000 <= epoch.revoked_before_ms) return null;
    }
    return undefined;
  }

  private keyRow(keyId: string): StoredKey | undefined {
    let key = this.keyRows.get(keyId);
    if (!key) {
      const stored = this.keys.get(keyId);
      if (!stored) return undefined;
      key = {
        ...stored,
        countsAs: this.ctx.storage.kv.get<string>(countsAsEntry(keyId)) ?? null,
        ownerTier: stored.ownerUserId === null ? null : this.sessionTier(stored.ownerUserId),
      };
      this.keyRows.set(keyId, key);
    }
    return key;
  }

  private sessionTier(userId: string): string | null {
    let tier = this.sessionTiers.get(userId);
    if (tier === undefined) {
      tier = this.ctx.storage.kv.get<string>(sessionTierEntry(userId)) ?? null;
      this.sessionTiers.set(userId, tier);
    }
    return tier;
  }

  /**
   * "Rate limits follow your account tier", for the user's own keys too: a session's tier
   * claim is kept for its user's keys, written only when it changes (the last one
   * presented wins: an upgrade or a downgrade shows in the next session). Through mutate,
   * in this turn: the user's keys are counted under it from their next request (no
   * caller waits for their leases; a lease runs out within MAX_LEASE_MS).
   */
  private noteSessionTier(userId: string, tier: string | null): void {
    if (this.sessionTier(userId) === tier) return;
    void this.mutate(() => {
      const entry = sessionTierEntry(userId);
      if (tier === null) this.ctx.storage.kv.delete(entry);
      else this.ctx.storage.kv.put(entry, tier);
      this.sessionTiers.set(userId, tier);
      return { result: undefined, affected: { keys: this.keys.ownedBy(userId) } };
    });
  }

  // ---------------------------------------------------------------- ZSky jobs

  /**
   * The one way to change what admission reads (a key's status or limits, the account's
   * plan, a session, a job, a suspension). `change` runs at once, in this turn, so no lease
   * is granted on the old state after it; the parsed key rows it names are dropped; and
   * the call returns only once every lease granted on the old state has run out, so when
   * the caller hears back nothing is admitted under the old state anywhere. A change that
   * only widens what is allowed (a new key, a lifted suspension) names nothing to wait for.
   */
  private async mutate<T>(change: () => { result: T; affected: Affected }): Promise<T> {
    const { result, affected } = change();
    for (const keyId of affected.keys ?? []) this.keyRows.delete(keyId);
    await this.leases.drained(tagsOf(affected));
    return result;
  }

  // ---------------------------------------------------------------- ZSky jobs

  /**
   * A settlement that suspends the key returns once the key's leases have run out, like a
   * revoke. An accepted job wakes the alarm by the end of its retention.
   */
  async settleGeneration(
    reservationId: string,
    outcome: "accepted" | "blocked" | "refused",
    job: AcceptedJob | null,
    limits: GenerationLimits,
  ): Promise<void> {
    const now = clock.now();
    await this.mutate(() => {
      const suspended = this.ledger.settle(reservationId, outcome, job, limits, now);
      return { result: undefined, affected: { keys: suspended ? this.chainOf(suspended) : [] } };
    });
    const retiresAt = outcome === "accepted" && job ? this.ledger.jobRetiresAt(job.jobId, now) : null;
    if (retiresAt !== null) await this.wakeBy(retireWakeAt(retiresAt));
  }

  /**
   * A job seen ending at the origin frees its slot (`finished`: this call freed it). One
   * that ended `blocked` may suspend its key. `job` is its record, null when the job is not
   * (or no longer) this account's.
   */
  finishJob(
    jobId: string,
    status: "completed" | "failed" | "blocked",
    limits: GenerationLimits,
  ): Promise<{ finished: boolean; job: JobView | null }> {
    return this.mutate(() => {
      const { finished, suspended, job } = this.ledger.finishJob(jobId, status, limits, clock.now());
      return { result: { finished, job }, affected: { keys: suspended ? this.chainOf(suspended) : [] } };
    });
  }

  /**
   * Jobs purged by their owner are refused from now on: no poll leased before the purge
   * may still reach the origin.
   */
  purgeJobs(jobIds: string[]): Promise<void> {
    return this.mutate(() => ({ result: this.ledger.purge(jobIds, clock.now()), affected: { jobs: jobIds } }));
  }

  /**
   * Download links the keys were handed up to now are refused from now on (job-state.ts):
   * one mark per key, read by every download of a link naming it, kept like a revoked
   * key's row (one small entry per key whose links were ever refused). Returns how many
   * stored results the keys' jobs hold.
   */
  refuseResultLinks(keyIds: string[]): number {
    const now = clock.now();
    for (const keyId of keyIds) this.ctx.storage.kv.put(`${LINKS_REFUSED}${keyId}`, now);
    return this.ledger.storedResultCount(keyIds, now);
  }

  /** When links the key was handed stopped being honoured (refuseResultLinks), if they have. */
  resultLinksRefusedSince(keyId: string): number | null {
    return this.ctx.storage.kv.get<number>(`${LINKS_REFUSED}${keyId}`) ?? null;
  }

  /** The key's running jobs, for the edge to re-check with the origin when its pool is full (see job-recheck.ts). */
  jobsToRecheck(keyId: string): string[] {
    return this.ledger.jobsToRecheck(this.headOf(keyId), clock.now());
  }

  /** Lifts the suspension of the key's chain (a grace key's is its head's). */
  liftSuspension(keyId: string): Promise<boolean> {
    return this.mutate(() => ({ result: this.ledger.liftSuspension(this.headOf(keyId)), affected: {} }));
  }

  /** Overage only changes what generate calls may spend, and those are never leased. */
  setOverage(settings: OverageSettings): Promise<void> {
    return this.mutate(() => ({ result: this.ledger.setOverage(settings, clock.now()), affected: {} }));
  }

  // ---------------------------------------------------------------- keys and sessions

  /**
   * Makes a new key usable. Called before its plaintext is handed to anyone, only once the
   * guard exists (keys/guard-birth.ts): its birth may have read the key from D1 already.
   */
  registerKey(key: GuardedKey): Promise<void> {
    return this.mutate(() => ({ result: this.keys.has(key.keyId) ? undefined : this.keys.insert(key), affected: {} }));
  }

  /**
   * Replaces a key by a new one in one turn: the old key must still be usable, the new
   * one takes over its limits, and every counter kept for the old key (windows, daily
   * caps, running jobs, safety record) carries over, so rotating neither resets a cap
   * nor escapes a suspension. Returns false, changing nothing, if the old key was no
   * longer usable (so of two racing rotations only one wins). Asked again after a
   * restart cut its wait short, it finds the rotation done and waits again.
   */
  rotateKey(oldKeyId: string, newKeyId: string, outbox?: KeyOutboxEntry): Promise<boolean> {
    return this.mutate(() => {
      const now = clock.now();
      const affected = { keys: [oldKeyId] };
      if (this.keys.has(newKeyId)) return { result: true, affected };
      const handed = this.handOver(oldKeyId, newKeyId, now);
      if (!handed) return { result: false, affected: {} };
      this.keys.revoke(oldKeyId, now);
      this.keepOutbox(outbox, {});
      return { result: true, affected: { keys: [oldKeyId, ...handed.regrouped] } };
    });
  }

  /**
   * A successor for a usable key (its row, or null when revoked, expired or unknown): the
   * new key takes the old one's limits and expiry, and every counter kept for the old key
   * (windows, daily caps, running jobs, safety record) moves to it. For rotateKey and
   * rollKey, inside their mutation; what becomes of the old key is theirs to say.
   *
   * A chain of keys made by rolls, rotations and more rolls shares one set of counters,
   * however it was made: the old key's grace keys (`regrouped`) count as the new key from
   * now on, and a successor of a grace key joins its chain (counted as the chain's head,
   * which keeps the counters). The caller's mutation drops their parsed rows and waits
   * for their leases.
   */
  private handOver(oldKeyId: string, newKeyId: string, now: number): { old: StoredKey; regrouped: string[] } | null {
    const old = this.keys.get(oldKeyId);
    if (!old || old.revokedAt !== null || (old.expiresAt !== null && now >= old.expiresAt)) return null;
    this.keys.insert({ ...old, keyId: newKeyId });
    const kv = this.ctx.storage.kv;
    const head = kv.get<string>(countsAsEntry(oldKeyId));
    if (head !== undefined) {
      // A grace key's counters are its head's already, and stay there.
      kv.put(countsAsEntry(newKeyId), head);
      return { old, regrouped: [] };
    }
    this.windows.rename(oldKeyId, newKeyId);
    this.leases.renameSubjects(oldKeyId, newKeyId);
    this.ledger.transfer(oldKeyId, newKeyId);
    const regrouped = this.graceKeysOf(oldKeyId);
    for (const keyId of regrouped) kv.put(countsAsEntry(keyId), newKeyId);
    return { old, regrouped };
  }

  /**
   * The keys counted as `head` (grace keys of its rolls), found by reading every
   * `counts_as` entry: only hand-overs and suspensions ask, and an account holds one entry
   * per roll with a grace period it ever had.
   */
  private graceKeysOf(head: string): string[] {
    const keys: string[] = [];
    for (const [entry, counted] of this.ctx.storage.kv.list<string>({ prefix: COUNTS_AS })) {
      if (counted === head) keys.push(entry.slice(COUNTS_AS.length));
    }
    return keys;
  }

  /** The key whose counters `keyId` counts in: its chain's head (itself, unless it is a grace key). */
  private headOf(keyId: string): string {
    return this.ctx.storage.kv.get<string>(countsAsEntry(keyId)) ?? keyId;
  }

  /** A key and every grace key counted as it: what a suspension of the key refuses. */
  private chainOf(head: string): string[] {
    return [head, ...this.graceKeysOf(head)];
  }

  /**
   * Replaces a key by a successor while the old one keeps working for `graceMs` more on
   * this guard's clock (never past its own expiry; the end is returned): the successor
   * takes over as in a rotation (handOver), and the old key is counted as the successor
   * (the chain's head) from now on, so the two share one limit. The old key's
   * leases granted before the roll are waited for (they counted under its own windows);
   * later ones end by its new expiry. Null, changing nothing, if the old key was not
   * usable. Asked again after a restart cut its wait short, it finds the roll done.
   */
  rollKey(oldKeyId: string, newKeyId: string, graceMs: number, outbox?: KeyOutboxEntry): Promise<{ oldEndsAt: number } | null> {
    return this.mutate(() => {
      const now = clock.now();
      const affected = { keys: [oldKeyId] };
      const old = this.keys.get(oldKeyId);
      if (old && this.keys.has(newKeyId)) return { result: { oldEndsAt: old.expiresAt! }, affected };
      const handed = old && this.handOver(oldKeyId, newKeyId, now);
      if (!old || !handed) return { result: null, affected: {} };
      const endsAt = Math.min(old.expiresAt ?? Infinity, now + graceMs);
      this.keys.setExpiry(oldKeyId, endsAt);
      this.ctx.storage.kv.put(countsAsEntry(oldKeyId), this.headOf(newKeyId));
      this.keepOutbox(outbox, { endsAt });
      return { result: { oldEndsAt: endsAt }, affected: { keys: [oldKeyId, ...handed.regrouped] } };
    });
  }

  /** Changes a key's plan and per-key limits; every request after it returns is counted under them. */
  setKeyLimits(keyId: string, plan: string | null, override: KeyLimitOverride | null): Promise<boolean> {
    return this.mutate(() => ({ result: this.keys.setLimits(keyId, plan, override), affected: { keys: [keyId] } }));
  }

  /**
   * Sets the account's own plan and window limits (null and none: back to each
   * credential's own); every request after it returns is counted under them.
   */
  setAccountPlan(plan: AccountPlan): Promise<void> {
    return this.mutate(() => ({ result: this.plan.set(plan), affected: { account: true } }));
  }

  /**
   * Refuses the key from now on. Returns false when it was already revoked or unknown
   * (unless by this same outbox entry: a repeat after a restart cut the call short).
   */
  revokeKey(keyId: string, outbox?: KeyOutboxEntry): Promise<boolean> {
    return this.mutate(() => {
      const changed = this.keys.revoke(keyId, clock.now());
      if (changed) this.keepOutbox(outbox, {});
      const repeated = !changed && outbox !== undefined && this.decisions!.has(outbox.id);
      return { result: changed || repeated, affected: { keys: [keyId] } };
    });
  }

  /** Revokes every active key of the account. */
  revokeAllKeys(outbox?: KeyOutboxEntry): Promise<string[]> {
    return this.mutate(() => {
      const keyIds = this.keys.revokeAll(clock.now());
      if (keyIds.length > 0) this.keepOutbox(outbox, { keysRevoked: keyIds });
      return { result: keyIds, affected: { keys: keyIds } };
    });
  }

  /**
   * Keeps a key decision's outbox entry, in the decision's own turn, and makes sure the
   * alarm comes (set in this turn too, so a crash right after cannot lose it; it may move
   * an earlier alarm later by at most OUTBOX_GRACE_MS, and the alarm reschedules the rest).
   */
  private keepOutbox(entry: KeyOutboxEntry | undefined, facts: KeyOutboxFacts): void {
    const now = clock.now();
    if (entry && this.decisions!.keep(entry, facts, now)) void this.ctx.storage.setAlarm(now + OUTBOX_GRACE_MS);
  }

  /** The caller delivered the entry (keys/key-outbox.ts): the alarm has nothing left to do for it. */
  keyOutboxDelivered(id: string): void {
    this.decisions?.delivered(id);
  }

  /**
   * Delivers the outbox entries no caller acknowledged in time (the caller died after the
   * decision), marked as the guard's. Returns when the alarm should come back for the rest.
   */
  private async deliverOutbox(decisions: DecisionOutbox, now: number): Promise<number> {
    let failed = false;
    for (const { id, entry, facts } of decisions.due(now)) {
      try {
        await deliverKeyOutbox(this.env, entry, facts, (keyId) => this.refuseResultLinks([keyId]), true);
        decisions.delivered(id);
      } catch (err) {
        failed = true;
        console.error(JSON.stringify({ msg: "key_outbox_delivery_failed", id, error: String(err).slice(0, 200) }));
      }
    }
    return decisions.next(now, failed);
  }

  /** Refuses one access token (by `jti`) until it would have expired anyway. */
  async revokeToken(tokenId: string, expiresAt: number): Promise<void> {
    await this.mutate(() => {
      this.sql.exec("INSERT OR REPLACE INTO revoked_tokens (jti, expires_at) VALUES (?, ?)", tokenId, expiresAt);
      return { result: undefined, affected: { tokens: [tokenId] } };
    });
    await this.wakeBy((expiresAt + 1) * 1000);
  }

  /** Makes sure the alarm runs by `at` (one alarm serves every reason: see alarm()). */
  private async wakeBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * Refuses every access token of `userId` issued up to now (logout everywhere). The edge
   * accepts an `iat` up to `clockSkewMs` ahead of its own clock, so a token issued before
   * now may claim an `iat` up to now + `clockSkewMs`: every `iat` up to then is refused,
   * and a token issued within that skew after this call is refused with them.
   */
  revokeSessions(userId: string, clockSkewMs = 0): Promise<void> {
    return this.mutate(() => {
      this.sql.exec("INSERT OR REPLACE INTO session_epochs (user_id, revoked_before_ms) VALUES (?, ?)", userId, clock.now() + clockSkewMs);
      return { result: undefined, affected: { users: [userId] } };
    });
  }

  /**
   * Address guards (`ip|…`, the only ones asked without a credential) hold nothing but
   * windows, of every address that called within the last window or so: an alarm by the
   * time this admission's windows pass deletes the rows that passed by then (sweep). Set
   * once; later admissions leave it, and the alarm comes back for what remains.
   */
  private sweepBy(until: number): void {
    if (this.sweepAt !== null) return;
    this.sweepAt = until;
    void this.ctx.storage.setAlarm(until);
  }

  /** Address guards: deletes the rows of windows that passed, and comes back for the rest. */
  private async sweep(): Promise<void> {
    const now = clock.now();
    const next = this.windows.sweep(now);
    this.sweepAt = next === null ? null : Math.max(next, now + SWEEP_EVERY_MS);
    if (this.sweepAt !== null) await this.ctx.storage.setAlarm(this.sweepAt);
  }

  /**
   * Sweeps an address guard's passed windows. An account's guard drops revoked token ids once
   * their tokens have expired (they can no longer verify) and retires ZSky jobs past
   * retention: their results leave R2 first, then their rows, so a failure (the alarm is
   * retried) never leaves an object nothing points to. Then it sleeps until the next of those.
   */
  override async alarm(): Promise<void> {
    if (this.address) return this.sweep();
    const now = clock.now();
    this.sql.exec("DELETE FROM revoked_tokens WHERE expires_at < ?", Math.floor(now / 1000));
    const outbox = this.decisions ? await this.deliverOutbox(this.decisions, now) : Infinity;
    const retiring = this.ledger.jobsToRetire(now, RETIRE_BATCH);
    const results = retiring.flatMap((j) => (j.resultKey === null ? [] : [j.resultKey]));
    if (results.length > 0) await this.env.RESULTS.delete(results);
    this.ledger.forgetJobs(retiring.map((j) => j.jobId));
    const tokens = this.sql.exec<{ next: number | null }>("SELECT MIN(expires_at) AS next FROM revoked_tokens").one().next;
    // A full batch may have left more past retention: run again at once, not on the next hour.
    const retirement = this.ledger.nextRetirement();
    const jobs = retiring.length === RETIRE_BATCH ? now : retirement === null ? Infinity : retireWakeAt(retirement);
    const next = Math.min(tokens === null ? Infinity : (tokens + 1) * 1000, jobs, outbox);
    if (next !== Infinity) await this.ctx.storage.setAlarm(next);
  }

  // ---------------------------------------------------------------- the admin guard (ADMIN_GUARD_NAME)
  // Failed admin credentials and console sessions, in the object's synchronous KV. No
  // admission reads them and no lease depends on them, so they change outside mutate().

  private adminLogins?: AdminLogins;
  private consoleSessions?: ConsoleSessions;
  private get logins(): AdminLogins {
    return (this.adminLogins ??= new AdminLogins(this.ctx.storage.kv));
  }
  private get sessions(): ConsoleSessions {
    return (this.consoleSessions ??= new ConsoleSessions(this.ctx.storage.kv));
  }

  /** Whether admin credentials from `address` are refused now, before they are compared. */
  adminLoginVerdict(address: string): AdminLoginVerdict {
    return this.logins.verdict(address, clock.now());
  }

  /** Counts a failed admin credential from `address`; `tripped` only for the failure that tripped the global budget. */
  countAdminFailure(address: string): { verdict: AdminLoginVerdict; tripped: AdminBudgetTrip | null } {
    return this.logins.fail(address, clock.now());
  }

  openConsoleSession(id: string, record: ConsoleSessionRecord): void {
    this.sessions.open(id, record, clock.now());
  }

  consoleSessionLive(id: string): boolean {
    return this.sessions.live(id, clock.now());
  }

  closeConsoleSession(id: string): boolean {
    return this.sessions.close(id);
  }

  /** Signs every console session of `identity` out; returns how many were live. */
  closeConsoleSessions(identity: string): number {
    return this.sessions.closeAll(identity, clock.now());
  }
}

/**
 * Whether a request may be admitted from a lease at all (the isolate asks only for
 * these; the guard grants only these). Only plain credentialed calls: a generate call
 * reserves allowance per job, a usage read must be current, and with Upstash the
 * windows are counted there per request.
 */

/**
 * The name of the share a request's admissions may spend: its windows exactly (subjects,
 * limits, lengths), so every token of it was counted in each window any member counts in.
 * Undefined for a request that cannot share (guard-protocol.ts shareable) or counts in no window.
 */
function shareOf(request: AdmitRequest, windows: CountedWindow[]): string | undefined {
  if (!shareable(request) || windows.length === 0) return undefined;
  return windows.map(({ policy, subject }) => `${subject}/${policy.limit}/${policy.windowSeconds}`).join(" ");
}

/** An admission with the pace hint its isolate asked for; a refusal tells nothing more (a refused credential least of all). */
function hinted(decision: AdmitDecision, gapHint: number | undefined): AdmitDecision {
  return decision.allow && gapHint !== undefined ? { ...decision, gapHint } : decision;
}

/** Why a valid key may not make this request, if it may not. */
function forbiddenUse(request: AdmitRequest, key: GuardedKey): string | null {
  if (request.route.sessionOnly) return "This endpoint needs a signed-in session, not an API key";
  if (!key.scopes.includes("*") && !key.scopes.includes(request.route.scope))
    return `This key does not have the '${request.route.scope}' scope`;
  return null;
}
