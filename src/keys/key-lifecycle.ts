import { loadSettings } from "../config/settings";
import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import { guardFor } from "../admit/guard-client";
import type { KeyLimitOverride } from "../limits/types";
import type { ProductId } from "../products/types";
import { writeAudit } from "../audit/audit-log";
import { generateKey, hashKey, importRefusal, keyModeOf, prefixFor, randomBase62, type KeyPrefix } from "./key-format";
import { resultLinksRevoked } from "../products/zsky/results/job-state";
import type { KeyOutboxEntry, KeyOutboxFacts } from "../limits/guard-protocol";
import { auditOf, deliverKeyOutbox } from "./key-outbox";
import { guardExists, revokeBeforeGuard, revokeUserBeforeGuard, rollBeforeGuard, settingBeforeGuard } from "./guard-birth";
import * as clock from "../util/clock";
import { insertKey, keyStatus, markRevoked, publishKey, type KeyRecord, type RevokeContext } from "./key-store";
import { productById } from "../products/index";

/**
 * Creating, importing and revoking keys: the steps every caller (admin API, ZakGT
 * developer endpoints, ZSky rotation) must take in the same order, kept in one place.
 */
export interface KeySpec {
  product: ProductId;
  accountId: string;
  ownerUserId?: string | null;
  label?: string | null;
  scopes?: string[];
  plan?: string | null;
  limitOverride?: KeyLimitOverride | null;
  expiresAt?: number | null;
  /** ZakGT only: `zak_test_` keys, which never reach production origins. */
  mode?: "live" | "test";
}

export interface Actor {
  actor: string;
  requestId: string;
}

function newKeyPrefix(spec: KeySpec): KeyPrefix {
  const prefix = prefixFor(spec.product, spec.mode);
  if (!prefix) throw new GatewayError("BAD_REQUEST", `mode: ${spec.product} has no ${spec.mode} keys`);
  return prefix;
}

function newRecord(spec: KeySpec, prefix: string, last4: string, imported: boolean): KeyRecord {
  return {
    keyId: `key_${randomBase62(20)}`,
    product: spec.product,
    accountId: spec.accountId,
    ownerUserId: spec.ownerUserId ?? null,
    label: spec.label ?? null,
    prefix,
    last4,
    scopes: spec.scopes ?? ["*"],
    plan: spec.plan ?? null,
    limitOverride: spec.limitOverride ?? null,
    imported,
    createdAt: clock.now(),
    expiresAt: spec.expiresAt ?? null,
    revokedAt: null,
    revokedBy: null,
    lastUsedAt: null,
  };
}

async function insertRecord(env: Env, record: KeyRecord, hash: string): Promise<void> {
  try {
    await insertKey(env, record, hash);
  } catch (err) {
    if (err instanceof Error && /UNIQUE/.test(err.message)) throw new GatewayError("CONFLICT", "This key is already registered");
    throw err;
  }
}

function audited(record: KeyRecord, action: string, by: Actor, detail?: Record<string, unknown>) {
  return {
    actor: by.actor,
    action,
    target: record.keyId,
    product: record.product,
    accountId: record.accountId,
    requestId: by.requestId,
    detail: detail ?? {
      label: record.label,
      scopes: record.scopes,
      plan: record.plan,
      expires_at: record.expiresAt,
      ...(record.replacedVia === "replace" ? { replaces: record.rotatedFrom } : {}),
    },
  };
}

/**
 * Stores the hash, registers the key with its guard (only then can it be used), audits.
 * If registration fails the key is never shown, so a half-made key is inert. An account
 * whose guard does not exist yet is not called (that would place its guard here, near the
 * operator): the guard reads the key from D1 when its first request creates it
 * (guard-birth.ts; the record is stored before the guard is looked for, so one born
 * meanwhile either read it or is told here).
 */
async function store(env: Env, record: KeyRecord, hash: string, action: string, by: Actor): Promise<void> {
  await insertRecord(env, record, hash);
  if (await guardExists(env, record)) await registerWithGuard(env, record);
  await writeAudit(env, audited(record, action, by));
}

async function registerWithGuard(env: Env, record: KeyRecord): Promise<void> {
  await guardFor(env, record).registerKey({
    keyId: record.keyId,
    scopes: record.scopes,
    plan: record.plan,
    ownerUserId: record.ownerUserId,
    expiresAt: record.expiresAt,
    limitOverride: record.limitOverride,
  });
}

/** A new key. The plaintext is returned here once and exists nowhere else afterwards. */
export async function issueKey(env: Env, spec: KeySpec, by: Actor): Promise<{ record: KeyRecord; secret: string }> {
  const prefix = newKeyPrefix(spec);
  const secret = generateKey(prefix);
  const record = newRecord(spec, prefix, secret.slice(-4), false);
  await store(env, record, await hashKey(secret), "key.create", by);
  return { record, secret };
}

/** A key from before zgate, any shape the edge would look up, by its plaintext or its SHA-256 (hex). */
export async function importKey(env: Env, spec: KeySpec, key: { plaintext?: string; sha256?: string }, by: Actor): Promise<KeyRecord> {
  const refusal = key.plaintext !== undefined ? importRefusal(key.plaintext) : null;
  if (refusal) throw new GatewayError("BAD_REQUEST", refusal);
  const hash = key.plaintext !== undefined ? await hashKey(key.plaintext) : key.sha256!.toLowerCase();
  const last4 = key.plaintext !== undefined ? key.plaintext.slice(-4) : "????";
  const record = newRecord(spec, "", last4, true);
  await store(env, record, hash, "key.import", by);
  return record;
}

/** A new key (its record and plaintext) taking `current`'s place with its spec, `how` it was made, and `changes`. */
function successorOf(current: KeyRecord, how: KeyRecord["replacedVia"], changes: Partial<KeySpec> = {}) {
  const spec: KeySpec = { ...current, mode: keyModeOf(current.prefix), ...changes };
  const prefix = newKeyPrefix(spec);
  const secret = generateKey(prefix);
  const record: KeyRecord = { ...newRecord(spec, prefix, secret.slice(-4), false), rotatedFrom: current.keyId, replacedVia: how };
  return { record, secret };
}

/** A new outbox entry for a key decision the guard is asked to make (KeyOutboxEntry). */
const outboxEntry = (fields: Omit<KeyOutboxEntry, "id" | "at">): KeyOutboxEntry => ({ id: crypto.randomUUID(), at: Date.now(), ...fields });

/**
 * Records what the guard decided in D1 and the audit log, then tells the guard its outbox
 * entry landed (`kept`: the guard kept it). Should this call die first, the guard's alarm
 * delivers the entry itself. Returns how many stored results the refused result links could open, per key.
 */
async function recordDecision(
  env: Env,
  owner: Pick<KeyRecord, "product" | "accountId">,
  entry: KeyOutboxEntry,
  facts: KeyOutboxFacts = {},
  kept = true,
): Promise<Record<string, number>> {
  const links = await deliverKeyOutbox(env, entry, facts, (keyId) => resultLinksRevoked(env, owner, [keyId]));
  if (kept) await guardFor(env, owner).keyOutboxDelivered(entry.id);
  return links;
}

/**
 * Replaces `current` by a new key with the same account, label, scopes, plan, limits and
 * expiry (ZSky `POST /v1/keys/rotate`). The swap is one guard call, so of two racing
 * rotations one wins and the other gets null; the counters of the old key carry over.
 */
export async function rotateKey(env: Env, current: KeyRecord, by: Actor): Promise<{ record: KeyRecord; secret: string } | null> {
  const { record, secret } = successorOf(current, null);
  await insertRecord(env, record, await hashKey(secret));
  const entry = outboxEntry({
    revoked: { keyIds: [current.keyId], by: by.actor, reason: null, ticket: null },
    audit: [
      audited(record, "key.create", by, { rotated_from: current.keyId }),
      audited(current, "key.rotate", by, { replaced_by: record.keyId }),
    ],
  });
  if (!(await guardFor(env, current).rotateKey(current.keyId, record.keyId, entry))) {
    // Lost the race (or the key died meanwhile): the new record was never usable; say so in D1 too.
    await markRevoked(env, [record.keyId], by.actor);
    return null;
  }
  await recordDecision(env, current, entry);
  return { record, secret };
}

/**
 * A new key for one that can no longer be rolled (revoked, e.g. as leaked, or expired):
 * the same product, account, owner, label, scopes, plan and limits, and its expiry when
 * that is still ahead; `replaces` the old key. Unlike a roll it shares no counters with
 * it (the old key is gone) and counts against the account's active-key cap. A key still
 * active is rolled instead (409).
 */
export async function replaceKey(
  env: Env,
  old: KeyRecord,
  by: Actor,
  context: RevokeContext = {},
): Promise<{ record: KeyRecord; secret: string }> {
  if (keyStatus(old) === "active") throw new GatewayError("CONFLICT", "This key is still active: roll it instead");
  const expiresAt = old.expiresAt !== null && old.expiresAt > clock.now() ? old.expiresAt : null;
  const { record, secret } = successorOf(old, "replace", { expiresAt });
  await store(env, record, await hashKey(secret), "key.create", by);
  const why = { reason: context.reason ?? null, ticket: context.ticket ?? null };
  await writeAudit(env, audited(old, "key.replace", by, { replaced_by: record.keyId, ...why }));
  return { record, secret };
}

/** The longest grace period a roll may give the old key. */
export const MAX_ROLL_GRACE_SECONDS = 30 * 86_400;

/**
 * Admin roll: a successor with the key's account, label, scopes, plan, limits, expiry and
 * counters (`replaces` the old one), while the old key keeps working for `graceSeconds`
 * (never past its own expiry; 0: it stops now), counted as the successor. The guard
 * enforces the old key's end, to its own clock. Null when the key was no longer usable.
 */
export async function rollKey(
  env: Env,
  current: KeyRecord,
  graceSeconds: number,
  by: Actor,
  context: RevokeContext = {},
): Promise<{ record: KeyRecord; secret: string; oldEndsAt: number } | null> {
  const { record, secret } = successorOf(current, "roll");
  const hash = await hashKey(secret);
  const why = { reason: context.reason ?? null, ticket: context.ticket ?? null };
  // The old key's end is the guard's to set: D1 and the `key.roll` entry take it from there (`old_key_ends_at`).
  const entry = outboxEntry({
    ended: current.keyId,
    audit: [
      audited(record, "key.create", by, { rolled_from: current.keyId, ...why }),
      audited(current, "key.roll", by, { replaced_by: record.keyId, ...why }),
    ],
  });
  // No guard yet: decided in D1 (guard-birth.ts), the old key's end on this clock, as the guard would set it.
  const now = clock.now();
  const endsAt = Math.min(current.expiresAt ?? Infinity, now + graceSeconds * 1000);
  const audit = { entries: auditOf(entry, { endsAt }, {}), at: entry.at };
  const beforeGuard = (await guardExists(env, current)) ? null : await rollBeforeGuard(env, current, { record, hash }, endsAt, now, audit);
  if (beforeGuard === false) return null;
  if (beforeGuard) {
    await publishKey(env, record, hash);
    return { record, secret, oldEndsAt: endsAt };
  }
  await insertRecord(env, record, hash);
  const rolled = await guardFor(env, current).rollKey(current.keyId, record.keyId, graceSeconds * 1000, entry);
  if (!rolled) {
    // Revoked or expired meanwhile: the new record was never usable; say so in D1 too.
    await markRevoked(env, [record.keyId], by.actor);
    return null;
  }
  const { oldEndsAt } = rolled;
  await recordDecision(env, current, entry, { endsAt: oldEndsAt });
  return { record, secret, oldEndsAt };
}

export interface RevokeOptions extends RevokeContext {
  /** Also refuse every ZSky result link issued so far for the jobs the key submitted. */
  revokeResultLinks?: boolean;
  /**
   * With revokeResultLinks: keys whose links go too, counted in this key's audit entry (a
   * rolled key's kept successors, which its jobs and polls went to).
   */
  resultLinksAlsoOf?: string[];
  /** More for the audit entry (a report's source URL, why a chained key went too); never a secret. */
  detail?: Record<string, unknown>;
}

/**
 * Refused at the guard first (that is what makes it instant), then recorded with its
 * reason and ticket (a key revoked before keeps the first revocation's), then audited:
 * through the guard's outbox, so a revoke the guard applied is recorded even if this call dies.
 * A key whose account's guard does not exist yet is revoked in D1 alone (guard-birth.ts:
 * the guard, once a request creates it, reads it revoked); it never made a job, so it has
 * no result links.
 */
export async function revokeKey(
  env: Env,
  record: KeyRecord,
  by: Actor,
  action = "key.revoke",
  options: RevokeOptions = {},
): Promise<{ changed: boolean; resultLinksRevoked: number; resultLinksOf: Record<string, number> }> {
  const why = { reason: options.reason ?? null, ticket: options.ticket ?? null };
  const links = options.revokeResultLinks ? [record.keyId, ...(options.resultLinksAlsoOf ?? [])] : undefined;
  const entry = outboxEntry({
    revoked: { keyIds: [record.keyId], by: by.actor, ...why },
    // Only a product's keys with result links (ZSky's) have any; the entry still says none were cut.
    refuseResultLinksOf: links && (productById(record.product)?.resultLinks ? links : []),
    audit: [audited(record, action, by, { already_revoked: false, ...why, ...options.detail })],
  });
  // Before its guard exists the key made no job: no result links to cut.
  const noLinks = Object.fromEntries((entry.refuseResultLinksOf ?? []).map((keyId) => [keyId, 0]));
  const beforeGuard = await revokeBeforeGuard(env, record, by.actor, why, entry.at, auditOf(entry, {}, noLinks));
  const changed = beforeGuard ?? (await guardFor(env, record).revokeKey(record.keyId, entry));
  // Already refused: the guard kept nothing, and this call's entry says so.
  const recorded = changed
    ? entry
    : { ...entry, audit: [audited(record, action, by, { already_revoked: true, ...why, ...options.detail })] };
  let resultLinksOf = noLinks;
  if (beforeGuard === null) resultLinksOf = await recordDecision(env, record, recorded, {}, changed);
  else if (!changed) await deliverKeyOutbox(env, recorded, {}, () => 0);
  return { changed, resultLinksRevoked: Object.values(resultLinksOf).reduce((sum, n) => sum + n, 0), resultLinksOf };
}

/** Every session and every key of a ZakGT user (account deactivation, or a security team's call). */
export async function revokeUserCredentials(
  env: Env,
  userId: string,
  by: Actor,
  keysToo: boolean,
  context: RevokeContext = {},
): Promise<string[]> {
  const owner = { product: "zakgt", accountId: userId } as const;
  const guard = guardFor(env, owner);
  const why = { reason: context.reason ?? null, ticket: context.ticket ?? null };
  const audit = { actor: by.actor, target: userId, product: "zakgt", accountId: userId, requestId: by.requestId };
  // The edge accepts an `iat` up to the clock skew ahead: every token issued up to now may claim up to then.
  const skewMs = loadSettings(env).JWT_CLOCK_SKEW_SECONDS * 1000;
  const at = clock.now();
  if (!keysToo) {
    const kept = await settingBeforeGuard(env, owner, { setting: "sessions", value: { revokedBeforeMs: at + skewMs } });
    if (!kept) await guard.revokeSessions(userId, skewMs);
    await writeAudit(env, { ...audit, action: "sessions.revoke", detail: { keys_revoked: [], ...why } });
    return [];
  }
  // The keys revoked are the guard's to say (or D1's, before the guard exists): the entry's `keys_revoked` takes them from there.
  const entry = outboxEntry({ revoked: { by: by.actor, ...why }, audit: [{ ...audit, action: "user.revoke_all", detail: why }] });
  const beforeGuard = await revokeUserBeforeGuard(env, owner, at + skewMs, { by: by.actor, at: entry.at, ...why }, (keyIds) =>
    auditOf(entry, { keysRevoked: keyIds }, {}),
  );
  if (beforeGuard !== null) return beforeGuard;
  await guard.revokeSessions(userId, skewMs);
  const keyIds = await guard.revokeAllKeys(entry);
  await recordDecision(env, owner, entry, { keysRevoked: keyIds }, keyIds.length > 0);
  return keyIds;
}
