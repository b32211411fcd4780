import type { Env } from "../env";
import { resultLinksRevoked } from "../results/job-state";
import { revokeKey, type Actor, type RevokeOptions } from "./key-lifecycle";
import { rolledSuccessors, rotatedDescendants, type KeyRecord } from "./key-store";

/**
 * What revoking a leaked key does, for every way a leak is reported (admin
 * `revoke-leaked`, the secret-scanning partner endpoints, the public report): the key,
 * then, for a reporter who proved who it is (`followRotations`), every key rotated from
 * it, since whoever held the leaked key may have made them (a ZSky rotation needs only
 * the key). A key an admin rolled it to stays: its plaintext was shown to the admin
 * alone, never with the leaked key, and revoking it would cut off the customer who moved
 * to it. Each is audited with why it went. An anonymous report revokes the key alone:
 * whoever holds a dead key (the customer rotated it away) must not be able to revoke the
 * key the customer moved to.
 */
export interface LeakRevocation {
  keyId: string;
  /** `leaked`: the reported key; `successor_of_leaked`: made from it (or its successors) by a rotation with the key (`replaces`). */
  why: "leaked" | "successor_of_leaked";
  replaces: string | null;
  /** Already refused before this report (rotated away, revoked, expired keys stay revoked): nothing changed for it. */
  alreadyRevoked: boolean;
  /** Who revoked it first, when that was before this report (e.g. `key:<id>` for a ZSky rotation). */
  previouslyRevokedBy: string | null;
}

export interface LeakOutcome {
  revoked: LeakRevocation[];
  /** Keys an admin rolled the revoked ones to: left working. */
  kept: { keyId: string; replaces: string }[];
  /** The leaked key had been rotated or rolled already (its customer moved on): its successors are listed in `revoked` or `kept`. */
  alreadyRotated: boolean;
  resultLinksRevoked: number;
}

export async function revokeLeakedKey(
  env: Env,
  leaked: KeyRecord,
  by: Actor,
  action: string,
  options: RevokeOptions,
  followRotations = true,
): Promise<LeakOutcome> {
  const successors = followRotations ? await rotatedDescendants(env, leaked.keyId) : [];
  const rolled = await rolledSuccessors(env, [leaked.keyId, ...successors.map((k) => k.keyId)]);
  const kept = rolled.map((k) => ({ keyId: k.keyId, replaces: k.rotatedFrom! }));
  const outcome: LeakOutcome = { revoked: [], kept, alreadyRotated: successors.length + rolled.length > 0, resultLinksRevoked: 0 };
  const chain: [KeyRecord, LeakRevocation["why"]][] = [
    [leaked, "leaked"],
    ...successors.map((k): [KeyRecord, "successor_of_leaked"] => [k, "successor_of_leaked"]),
  ];
  for (const [record, why] of chain) {
    const detail = { ...options.detail, why, ...(why === "successor_of_leaked" ? { leaked_key: leaked.keyId } : {}) };
    const { changed, resultLinksRevoked } = await revokeKey(env, record, by, action, { ...options, detail });
    outcome.resultLinksRevoked += resultLinksRevoked;
    outcome.revoked.push({
      keyId: record.keyId,
      why,
      replaces: record.rotatedFrom ?? null,
      alreadyRevoked: !changed,
      previouslyRevokedBy: changed ? null : record.revokedBy,
    });
  }
  // A roll hands the old key's jobs to the successor (and the old key's later jobs count
  // as the successor's), so the leaked key's links may sit under a kept successor: cut
  // those too (an anonymous report changes nothing for another key). Its holder gets new
  // links by polling again.
  if (options.revokeResultLinks && followRotations && leaked.product === "zsky" && kept.length > 0) {
    outcome.resultLinksRevoked += await resultLinksRevoked(
      env,
      leaked,
      kept.map((k) => k.keyId),
    );
  }
  return outcome;
}
