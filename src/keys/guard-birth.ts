import type { Env } from "../env";
import type { AccountPlan, KeyLimitOverride } from "../limits/types";
import type { OverageSettings } from "../limits/guard-protocol";
import type { ProductId } from "../products/types";
import { accountGuardName } from "../admit/guard-client";
import { storedKey, type KeyRow, type StoredKey } from "../guard/key-table";
import { auditOnceAfterChange, type AuditEntry } from "../audit/audit-log";
import { successorInsertAfterChange, type KeyRecord, type RevokeContext } from "./key-store";

/**
 * Where an account's guard lives. A Durable Object is placed near its first caller, and
 * for most accounts that used to be the admin call registering their first key: the guard
 * lived near the operator, and every request paid the round trip to it. So admin actions
 * on an account whose guard does not exist yet never call it (calling would create it):
 * they are decided in D1, which holds every key record already, and the guard reads them
 * when its first call creates it, a request of the account's own traffic near its callers
 * (its *birth*, AccountGuard's constructor).
 *
 * D1 orders the two. `account_guards` names the guards that exist: a birth inserts the
 * guard's row and reads the account's keys in one batch (one transaction), and each
 * decision below is one statement that applies only while that row is absent. So a
 * decision either lands before the birth, and the guard reads it, or finds the guard
 * born and goes to the guard as for any account. A key revoked here has never been
 * admitted by any guard, so no lease of it exists anywhere: it is refused from the moment
 * the revoke returns, as one the guard revoked.
 */

/** What a guard reads of a key at its birth; `rolledFrom`: the key an admin rolled to it before the guard existed. */
export type KeyAtBirth = StoredKey & { rolledFrom: string | null };

type BirthRow = KeyRow & { rotated_from: string | null; replaced_via: string | null };

const UNBORN = "NOT EXISTS (SELECT 1 FROM account_guards WHERE name = ?)";

type Owner = Pick<KeyRecord, "product" | "accountId">;

/** Whether the account's guard exists (was ever called since account_guards began, or had a key before). */
export async function guardExists(env: Env, owner: Owner): Promise<boolean> {
  const row = await env.DB.prepare("SELECT 1 AS born FROM account_guards WHERE name = ?").bind(accountGuardName(owner)).first();
  return row !== null;
}

/**
 * An account setting an admin made while the account had no guard, applied by the guard
 * at its birth: its plan (setAccountPlan), ZSky overage (setOverage, with when it was set:
 * the month overage began), and a ZakGT user's sessions revoked before a time (revokeSessions).
 */
export type SettingBeforeGuard =
  | { setting: "plan"; value: AccountPlan }
  | { setting: "overage"; value: OverageSettings & { at: number } }
  | { setting: "sessions"; value: { revokedBeforeMs: number } };

/** What a guard reads at its birth. */
export interface Birth {
  keys: KeyAtBirth[];
  settings: SettingBeforeGuard[];
}

/**
 * The guard's birth, in one transaction: its row in account_guards, the settings made
 * before it (settingBeforeGuard), and the account's keys as D1 has them. Not the successors of rotations and rolls, which their guard makes
 * (handOver) and one being made right now must not look made, except the rolls decided
 * here before the guard existed (`rolls_before_guard`, rollBeforeGuard).
 */
export async function born(env: Env, name: string, product: ProductId, accountId: string, now: number): Promise<Birth> {
  const [, settings, keys] = await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO account_guards (name, born_at) VALUES (?, ?)").bind(name, now),
    env.DB.prepare("SELECT setting, value FROM guard_settings_before_birth WHERE name = ?").bind(name),
    env.DB.prepare(
      `SELECT id AS key_id, scopes, plan, owner_user_id, expires_at, limit_override, revoked_at, rotated_from, replaced_via FROM api_keys
       WHERE product = ? AND account_id = ?
         AND (rotated_from IS NULL OR replaced_via = 'replace' OR id IN (SELECT key_id FROM rolls_before_guard))`,
    ).bind(product, accountId),
  ]);
  const keysAtBirth = (keys!.results as BirthRow[]).map((row) => ({
    ...storedKey(row),
    rolledFrom: row.replaced_via === "roll" ? row.rotated_from : null,
  }));
  const settingsAtBirth = (settings!.results as { setting: string; value: string }[]).map(
    (row) => ({ setting: row.setting, value: JSON.parse(row.value) }) as SettingBeforeGuard,
  );
  return { keys: keysAtBirth, settings: settingsAtBirth };
}

/**
 * Keeps an account setting in D1 if the account's guard does not exist (the guard applies
 * it at its birth): true when kept, false when the guard exists (the guard decides). A
 * later setting of the same kind replaces an earlier one, as on the guard.
 */
export async function settingBeforeGuard(env: Env, owner: Owner, setting: SettingBeforeGuard): Promise<boolean> {
  const name = accountGuardName(owner);
  const results = await env.DB.batch([keepSetting(env, name, setting), bornStatement(env, name)]);
  return decidedBeforeGuard(results) !== null;
}

/** The setting kept, changing a row only while the guard `name` does not exist. */
const keepSetting = (env: Env, name: string, setting: SettingBeforeGuard) =>
  env.DB.prepare(`INSERT OR REPLACE INTO guard_settings_before_birth (name, setting, value) SELECT ?, ?, ? WHERE ${UNBORN}`).bind(
    name,
    setting.setting,
    JSON.stringify(setting.value),
    name,
  );

/**
 * Revokes a key in D1 if its account's guard does not exist, with its `audit` entries in
 * the same transaction (what the guard's outbox does for its own decisions): true when
 * this revoked it, false when it was revoked already, null when the guard exists (the
 * guard decides).
 */
export async function revokeBeforeGuard(
  env: Env,
  record: KeyRecord,
  by: string,
  context: RevokeContext,
  at: number,
  audit: AuditEntry[],
): Promise<boolean | null> {
  // Most revoked keys were used: their guard exists, and D1 is only read.
  if (await guardExists(env, record)) return null;
  const name = accountGuardName(record);
  const results = await env.DB.batch([
    env.DB.prepare(
      `UPDATE api_keys SET revoked_at = ?, revoked_by = ?, revoke_reason = ?, revoke_ticket = ?
       WHERE id = ? AND revoked_at IS NULL AND ${UNBORN}`,
    ).bind(at, by, context.reason ?? null, context.ticket ?? null, record.keyId, name),
    ...audit.map((entry) => auditOnceAfterChange(env, entry, at)),
    bornStatement(env, name),
  ]);
  return decidedBeforeGuard(results);
}

const bornStatement = (env: Env, name: string) => env.DB.prepare("SELECT 1 AS born FROM account_guards WHERE name = ?").bind(name);

/** A batch's verdict: null when its last statement found the guard born, else whether its first changed a row. */
function decidedBeforeGuard(results: D1Result[]): boolean | null {
  if (results[results.length - 1]!.results.length > 0) return null;
  return results[0]!.meta.changes > 0;
}

/** Sets a key's plan and own limits in D1 if its account's guard does not exist; false when it exists (the guard first). */
export async function setLimitsBeforeGuard(
  env: Env,
  record: KeyRecord,
  plan: string | null,
  override: KeyLimitOverride | null,
): Promise<boolean> {
  const changed = await env.DB.prepare(`UPDATE api_keys SET plan = ?, limit_override = ? WHERE id = ? AND ${UNBORN}`)
    .bind(plan, override ? JSON.stringify(override) : null, record.keyId, accountGuardName(record))
    .run();
  return changed.meta.changes > 0;
}

/**
 * An admin roll decided in D1 if the key's account has no guard: the old key ends at
 * `endsAt`, its successor is inserted and its `audit` entries written in one batch, all
 * only while the old key is usable and the guard does not exist. True: rolled here (the
 * guard reads the successor, and counts the old key as it, at its birth); false: the old
 * key was not usable, nothing made; null: the guard exists (it rolls).
 */
export async function rollBeforeGuard(
  env: Env,
  current: KeyRecord,
  successor: { record: KeyRecord; hash: string },
  endsAt: number,
  now: number,
  audit: { entries: AuditEntry[]; at: number },
): Promise<boolean | null> {
  const name = accountGuardName(current);
  const results = await env.DB.batch([
    env.DB.prepare(
      `UPDATE api_keys SET expires_at = ? WHERE id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND ${UNBORN}`,
    ).bind(endsAt, current.keyId, now, name),
    successorInsertAfterChange(env, successor.record, successor.hash),
    env.DB.prepare("INSERT INTO rolls_before_guard (key_id) SELECT ? WHERE changes() > 0").bind(successor.record.keyId),
    ...audit.entries.map((entry) => auditOnceAfterChange(env, entry, audit.at)),
    bornStatement(env, name),
  ]);
  return decidedBeforeGuard(results);
}

/**
 * A ZakGT user's sessions and keys revoked in D1 if the user's guard does not exist (the
 * security team's revoke-all of a user no request has reached yet): the sessions setting
 * (`sessionsBefore`), the account's active keys and the `audit` entries (of the keys to
 * revoke) in one transaction. The keys revoked here, or null when the guard
 * exists (it revokes them, revokeSessions and revokeAllKeys).
 */
export async function revokeUserBeforeGuard(
  env: Env,
  owner: Owner,
  sessionsBefore: number,
  revoked: { by: string; at: number } & RevokeContext,
  audit: (keyIds: string[]) => AuditEntry[],
): Promise<string[] | null> {
  if (await guardExists(env, owner)) return null;
  const name = accountGuardName(owner);
  const { results: active } = await env.DB.prepare(
    "SELECT id FROM api_keys WHERE product = ? AND account_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
  )
    .bind(owner.product, owner.accountId, revoked.at)
    .all<{ id: string }>();
  const keyIds = active.map((row) => row.id);
  const entries = audit(keyIds);
  const results = await env.DB.batch([
    // Changes a row only while the guard does not exist: the audit entries follow it.
    keepSetting(env, name, { setting: "sessions", value: { revokedBeforeMs: sessionsBefore } }),
    ...entries.map((entry) => auditOnceAfterChange(env, entry, revoked.at)),
    ...keyIds.map((keyId) =>
      env.DB.prepare(
        `UPDATE api_keys SET revoked_at = ?, revoked_by = ?, revoke_reason = ?, revoke_ticket = ?
         WHERE id = ? AND revoked_at IS NULL AND ${UNBORN}`,
      ).bind(revoked.at, revoked.by, revoked.reason ?? null, revoked.ticket ?? null, keyId, name),
    ),
    bornStatement(env, name),
  ]);
  if (results[results.length - 1]!.results.length > 0) return null;
  const updates = results.slice(1 + entries.length, -1);
  return keyIds.filter((_, i) => updates[i]!.meta.changes > 0);
}
