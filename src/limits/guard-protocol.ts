import type { AuditEntry } from "../audit/audit-log";
import type { ProductId } from "../products/types";
import type { RequestLimits } from "./policies";
import type { AccountPlan, KeyLimitOverride } from "./types";
import { hmacKey } from "../util/hmac";
import { utf8 } from "../util/utf8";

/**
 * The protocol between the isolates and the account guard (src/guard/account-guard.ts):
 * the RPC request and decision types, the lease constants both sides must agree on, and
 * the one way to name what a lease depends on. Both sides import this module and nothing
 * else of each other, so the process boundary (one single-threaded Durable Object, many
 * concurrent isolates) is visible in the imports.
 */

// ---------------------------------------------------------------- leases: shared bounds

/**
 * Most admissions in one lease: what an isolate asks for at most and the guard grants at
 * most. Leases are sized to the subject's rate in the isolate times the lease life; this
 * only bounds one grant (issue 25's busiest account: 100 requests a second per isolate).
 */
export const MAX_LEASE_TOKENS = 10_000;
/** The longest lease the guard grants, whatever an isolate asks: it bounds how long a revoke may wait. */
export const MAX_LEASE_MS = 1_000;
/** The shortest lease life a deployment may set (GUARD_LEASE_MS): shorter would end inside the isolate's safety margin. */
export const MIN_LEASE_MS = 50;
/**
 * How long after a subject's last request an isolate keeps its lease alive between
 * requests, at most (src/admit/lease-book.ts); the guard's pace hints look back as far.
 */
export const MAX_IDLE_MS = 5_000;

/** What the edge tells the guard about one request. */
export interface AdmitRequest {
  /** The product the request is for (a key may belong to another one); `report` counts public key reports. */
  product: ProductId | "report";
  /** What a key needs for this route: its module scope, and whether only sessions may call it. */
  route: { scope: string; sessionOnly: boolean };
  credential?: {
    via: "jwt" | "key";
    /** The product the key or session belongs to. */
    product: ProductId;
    keyId?: string;
    userId?: string;
    tokenId?: string;
    /** Access token `iat`, seconds. */
    issuedAt?: number;
    /** A session's tier, from its verified access token: its plan unless the account has one. */
    tier?: string;
  };
  accountId?: string;
  /** Client IP, for the per-IP windows of unauthenticated routes. */
  ip?: string;
  limits: RequestLimits;
  /** Sliding windows are counted elsewhere (LIMITER_BACKEND=upstash): skip them here. */
  windowsElsewhere?: boolean;
  /** A ZSky job the request names: it must be one this account submitted and has not purged. */
  jobId?: string;
  /** GET /v1/usage: the account's allowance counters come back with the decision. */
  wantUsage?: boolean;
  /** The isolate would like a lease of up to `want` admissions for `ttlMs`, and hands back unspent tokens of earlier ones. */
  lease?: LeaseRequest;
  /**
   * How long (ms) the isolate would repeat a full window's refusal without asking again
   * (edge/standing-refusals.ts); 0 or absent: it asks every time. A credential's refusal
   * stands at most this long and is drained by a mutation like a lease, so a revoke or a
   * raised limit still applies to the very next request.
   */
  stand?: number;
  /**
   * The isolate would have this credential spend its share of the request's windows (a
   * lease many credentials spend, see Vouched): decided on its windows (admitted, or
   * refused for a full one), the guard vouches for it for `ttlMs`.
   */
  join?: { ttlMs: number };
  /** Which isolate asks about which subject: what the guard's pace hints are learned from (Pace). */
  pace?: Pace;
}

/**
 * An isolate's ask about one subject (a request of its own, or a renewal of its lease),
 * told to the guard so it can hint a subject's pace to an isolate that does not know it
 * yet (src/guard/pace-log.ts): far from the guard, an isolate times a slow subject's
 * renewals to its next request, which it could only foresee after two requests of its own.
 */
export interface Pace {
  /** The isolate's name for the subject (leaseBookKey). */
  subject: string;
  /** The asking isolate's lease book, by a random number. */
  isolate: number;
  /** The isolate knows no gap between the subject's requests yet: an admission may carry `gapHint`. */
  ask?: boolean;
  /** The gap (ms) the isolate measured between its own requests of the subject (never a hint passed on). */
  gap?: number;
}

/**
 * A credential the guard vouched for: for `ms` (from before the isolate asked) it may
 * spend the isolate's share of the window set `share` names, a lease of tokens counted in
 * those windows that every credential counted in exactly them (same subjects, limits and
 * lengths) spends. Held like a lease under the credential's tags, so a revoke, a rotation
 * or a limit change waits for it. `key` and `accountPlan` are the facts an admission from
 * the share reports, as the credential's own admission would.
 */
export interface Vouched {
  share: string;
  ms: number;
  key?: GuardedKey;
  accountPlan?: AccountPlan;
}

/** One share renewed: its members vouched for again, and its next lease asked for (`want` tokens, `ttlMs`). */
export interface ShareRenewal {
  share: string;
  /** The members' latest requests (without a lease). */
  members: AdmitRequest[];
  want: number;
  ttlMs: number;
}

export interface ShareAnswer {
  /** Per member: vouched for again, or null (refused, or counted in other windows now): it leaves the share. */
  members: (Vouched | null)[];
  /** The share's next lease (a renewal's decision: all spare tokens), or its window's refusal; absent when no member is left. */
  decision?: AdmitDecision;
}

export interface LeaseRequest {
  want: number;
  ttlMs: number;
  returns?: LeaseReturn[];
}

/**
 * An ended lease handed back: its unspent tokens, and when (ms after the isolate asked for
 * it) its last token was spent, so the spent ones count from then rather than from the
 * lease's end (never earlier than they were spent: the isolate asked before the grant).
 */
export interface LeaseReturn {
  id: string;
  unspent: number;
  lastSpentMs?: number;
}

/** The mutable facts about a key that only the guard holds. */
export interface GuardedKey {
  keyId: string;
  scopes: string[];
  plan: string | null;
  ownerUserId: string | null;
  /** ms since epoch, or null for no expiry. */
  expiresAt: number | null;
  limitOverride?: KeyLimitOverride | null;
  /** A key rolled with a grace period: counted as the head of its chain (this id: its successor, or the key that replaced that) until it expires. */
  countsAs?: string | null;
  /** A user's key (ZakGT): the tier its owner's sessions last presented, its plan when neither the account nor the key has one. */
  ownerTier?: string | null;
}

/** One window's state after this request, for the RateLimit headers. */
export interface WindowReport {
  name: string;
  limit: number;
  windowSeconds: number;
  remaining: number;
  resetSeconds: number;
}

export type AdmitDecision =
  | {
      allow: true;
      key?: GuardedKey;
      accountPlan?: AccountPlan;
      windows: WindowReport[];
      reservationId?: string;
      usage?: UsageSnapshot;
      lease?: LeaseGrant;
      /** A request naming a job of the account's (a poll): the job, so its end needs no second guard call on the way. */
      job?: JobStatus;
      /** Asked to join its share (`join`): vouched for. */
      vouched?: Vouched;
      /** Asked for a subject's pace (`pace.ask`): the gap (ms) the isolate may expect between its requests. */
      gapHint?: number;
    }
  // One reason for every refused credential: callers must not learn which it was.
  | { allow: false; refusal: "credential" }
  | { allow: false; refusal: "forbidden"; message: string }
  | { allow: false; refusal: "not_found"; windows: WindowReport[] }
  | {
      allow: false;
      refusal: "suspended" | "rate_limited" | "quota" | "concurrency";
      message: string;
      retryAfter: number;
      windows: WindowReport[];
      /** A full window's refusal only: how long (ms) the isolate may repeat it without asking (see `stand`). */
      standsMs?: number;
      /** A full window's refusal, asked to join its share (`join`): vouched for, to spend the share once it has room. */
      vouched?: Vouched;
    };

export interface UsageSnapshot {
  videos_used: number;
  videos_overage: number;
  images_used: number;
  images_overage: number;
  overage_charged_cents: number;
  base_videos_allowance: number;
  base_images_allowance: number;
  month_start: string;
}

/**
 * What D1 and the audit log must come to say about a decision the guard makes on keys (a
 * revoke, a rotation, a roll): handed to the guard with the call that asks for it and kept
 * in the guard's outbox in the same turn as the change, so it lands even if that call
 * dies. The caller delivers it and acknowledges it by `id`; an entry not acknowledged
 * within a grace period is delivered by the guard's alarm (keys/key-outbox.ts).
 */
export interface KeyOutboxEntry {
  id: string;
  /** When the decision was asked for (ms): D1's revoked_at, the audit entries' time. */
  at: number;
  /** Keys D1 marks revoked, by whom and why; without `keyIds`, the keys the guard revoked (revokeAllKeys). */
  revoked?: { keyIds?: string[]; by: string; reason: string | null; ticket: string | null };
  /** A key whose end the guard set (a roll's old key): D1 takes that end. */
  ended?: string;
  /** ZSky: keys whose result links are refused too, each counted in the audit entries (`result_links_revoked`). */
  refuseResultLinksOf?: string[];
  audit: AuditEntry[];
}

/** What the guard decided, kept with an outbox entry: the keys it revoked (revokeAllKeys), a rolled key's end. */
export interface KeyOutboxFacts {
  keysRevoked?: string[];
  endsAt?: number;
}

/** How the guards of client addresses are named (`ip|<scope>|<shard>`); account guards are `<product>:<account>`. */
export const ADDRESS_GUARD_PREFIX = "ip|";

/**
 * Client addresses' windows are counted in this many guards per scope (a product, or the
 * public leak report) by default (setting ADDRESS_GUARD_SHARDS), each address always in the
 * same one, in rows of its own: exact per address, while an address never seen before (a
 * flood from ever new addresses) starts no object. A scope's per-address traffic spreads
 * evenly over them (addressGuardName), so it meets a guard's soft limit of about 1,000
 * requests/s at 256 times that: 256 takes a flood as large as the whole of docs/scale.md's
 * target traffic (100,000 req/s) at under half the limit. `npm start` runs 16: its one
 * process holds every object, at about 0.8 MB each (docs/limits.md, "Memory").
 */
export const ADDRESS_GUARD_SHARDS = 256;

/**
 * The guard that counts `address`'s windows in `scope` (`address` as clientAddress() gives
 * it), one of `shards`: the shard is an HMAC of the address under a secret of the
 * deployment (addressShardSecret), so no caller can tell which addresses share a guard,
 * nor aim a flood at one (a public hash would let them pick addresses of one shard).
 * A new secret moves addresses to other guards (docs/limits.md).
 */
/**
 * The secret addressGuardName keys its hash with: the origin-assertion key of the smallest
 * kid in ORIGIN_ASSERTION_KEYS (the one secret every deployment has; the HMAC's
 * `address-shard|` label keeps the two uses apart, and the hash reveals nothing of the
 * key). A rotation whose new kid sorts after the old one (a1, a2, ...) moves addresses
 * once, when the old key is retired.
 */
export function addressShardSecret(assertionKeys: Record<string, string>): string {
  return assertionKeys[Object.keys(assertionKeys).sort()[0]!]!;
}

export async function addressGuardName(secret: string, shards: number, scope: string, address: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), utf8(`address-shard|${address}`));
  // At most 4,096 shards of 2^32: each as likely as the next, to one part in a million.
  return `${ADDRESS_GUARD_PREFIX}${scope}|${new DataView(mac).getUint32(0) % shards}`;
}

// ---------------------------------------------------------------- the admin guard

/**
 * The one guard of zgate's own admin surface: failed admin credentials of every client
 * address (guard/admin-logins.ts) and the console's sessions (guard/console-sessions.ts).
 * No `:` and no `ip|`, so it is never an account's guard nor an address's.
 */
export const ADMIN_GUARD_NAME = "admin";

/** Whether admin credentials from a client address are refused before they are compared. */
export type AdminLoginVerdict = { refused: false } | { refused: true; retryAfter: number };

/** The global budget of failed admin credentials just tripped (told to the one failure that tripped it). */
export interface AdminBudgetTrip {
  /** Failures in the budget's window, and how many addresses they came from. */
  failures: number;
  addresses: number;
  /** When the trip ends (ms). */
  until: number;
}

/** A signed-in console session, by the SHA-256 of its id: whose it is and when it ends (ms). */
export interface ConsoleSessionRecord {
  identity: string;
  expiresAt: number;
}

/** Whose a console session signed in with ADMIN_TOKEN is (the actor of its admin calls). */
export const TOKEN_CONSOLE_IDENTITY = "admin:token";

/** A job's record as a completed poll needs it. */
export interface JobView {
  /** Where its result is stored in R2; null for `X-ZSky-Store: 0` (never persisted). */
  resultKey: string | null;
}

/** A job as its poll's admission saw it: its record, and whether zgate had already seen it end. */
export interface JobStatus extends JobView {
  ended: boolean;
}

/** What a ZSky job's guard records once the origin accepted it (settleGeneration). */
export interface AcceptedJob extends JobView {
  jobId: string;
}

export interface OverageSettings {
  enabled: boolean;
  monthlyCapCents: number;
  /** The first month (YYYY-MM) overage was on: unused budget rolls over from there. */
  since?: string;
}

export interface LeaseGrant {
  id: string;
  /** Admissions granted, the caller's own request included. */
  tokens: number;
  ttlMs: number;
}

/** Leases only batch plain admissions: never a generate call, a usage read or windows counted elsewhere. */
export function leasable(request: Pick<AdmitRequest, "limits" | "wantUsage" | "windowsElsewhere">): boolean {
  return !request.limits.generates && !request.wantUsage && !request.windowsElsewhere;
}

/**
 * Shares (Vouched) only pool plain credentialed admissions: leasable ones that name no job
 * and count no allowance (a suspension of a ZSky key is read per request).
 */
export function shareable(request: Pick<AdmitRequest, "limits" | "wantUsage" | "windowsElsewhere" | "credential" | "jobId">): boolean {
  return leasable(request) && request.credential !== undefined && request.jobId === undefined && !request.limits.generation;
}

// ---------------------------------------------------------------- what a lease depends on

declare const leaseTagBrand: unique symbol;
/**
 * A fact a lease was granted on. A guard mutation that changes such a fact waits for
 * every lease of its tags to run out before it returns; the tags are only ever built
 * here, so the grant and the mutation cannot spell them differently.
 */
export type LeaseTag = string & { readonly [leaseTagBrand]: true };

const tag = (value: string) => value as LeaseTag;

export const leaseTag = {
  /** The account's plan and limits. */
  account: tag("account"),
  key: (keyId: string) => tag(`key:${keyId}`),
  /** One access token, by `jti` (logout). */
  token: (tokenId: string) => tag(`jti:${tokenId}`),
  /** Every session of a user (revoke-sessions). */
  user: (userId: string) => tag(`user:${userId}`),
  job: (jobId: string) => tag(`job:${jobId}`),
};

/** The tags a lease granted for `request` depends on. */
export function leaseTagsOf(request: AdmitRequest): LeaseTag[] {
  const credential = request.credential;
  // A client address's windows change only with the deployment's settings, which start a new lease book.
  if (!credential) return [];
  const tags = [
    leaseTag.account,
    credential.keyId !== undefined ? leaseTag.key(credential.keyId) : leaseTag.token(credential.tokenId ?? ""),
  ];
  if (credential.via === "jwt" && credential.userId !== undefined) tags.push(leaseTag.user(credential.userId));
  if (request.jobId !== undefined) tags.push(leaseTag.job(request.jobId));
  return tags;
}

/**
 * Where an isolate keeps the leases of one credential on one route (and job): requests
 * that may share a lease share this key, and nothing else does.
 */
export function leaseBookKey(request: AdmitRequest, routeName: string): string {
  const credential = request.credential;
  // A product is never `ip`, so the two forms cannot meet.
  if (!credential) return `ip|${request.product}|${request.ip ?? ""}|${routeName}`;
  return `${request.product}|${request.accountId ?? ""}|${credential.keyId ?? `jwt:${credential.tokenId}`}|${routeName}|${request.jobId ?? ""}`;
}
