import type { Env } from "../env";
import { revokeKey, type Actor, type RevokeOptions } from "./key-lifecycle";
import { keyStatus, rolledSuccessors, rotatedDescendants, type KeyRecord } from "./key-store";

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
  /** Stored results of its own jobs whose links were refused. */
  resultLinksRevoked: number;
}

/** A key an admin rolled a revoked one to: left working. */
export interface KeptSuccessor {
  keyId: string;
  replaces: string;
  /** Its status now, which this revocation left as it was: `active` means it still works. */
  status: "active" | "revoked" | "expired";
  /** Stored results of its jobs whose links were refused all the same: the leaked key's jobs and polls went to it. */
  resultLinksRevoked: number;
}

export interface LeakOutcome {
  revoked: LeakRevocation[];
  kept: KeptSuccessor[];
  /** The leaked key had been rotated or rolled already (its customer moved on): its successors are listed in `revoked` or `kept`. */
  alreadyRotated: boolean;
  /** Every link refused, the kept successors' included: the sum of the counts above. */
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
  const outcome: LeakOutcome = { revoked: [], kept: [], alreadyRotated: successors.length + rolled.length > 0, resultLinksRevoked: 0 };
  const chain: [KeyRecord, LeakRevocation["why"]][] = [
    [leaked, "leaked"],
    ...successors.map((k): [KeyRecord, "successor_of_leaked"] => [k, "successor_of_leaked"]),
  ];
  // A roll hands the old key's jobs to the successor (and the old key's later polls count
  // as the successor's), so the leaked key's links may sit under a kept successor: those
  // go with the leaked key's own, in its audit entry (an anonymous report changes nothing
  // for another key). Their holder gets new links by polling again.
  const keptIds = followRotations ? rolled.map((k) => k.keyId) : [];
  let underKept: Record<string, number> = {};
  for (const [record, why] of chain) {
    const detail = { ...options.detail, why, ...(why === "successor_of_leaked" ? { leaked_key: leaked.keyId } : {}) };
    const also = why === "leaked" ? { resultLinksAlsoOf: keptIds } : {};
    const { changed, resultLinksRevoked, resultLinksOf } = await revokeKey(env, record, by, action, { ...options, ...also, detail });
    if (why === "leaked") underKept = resultLinksOf;
    outcome.resultLinksRevoked += resultLinksRevoked;
    outcome.revoked.push({
      keyId: record.keyId,
      why,
      replaces: record.rotatedFrom ?? null,
      alreadyRevoked: !changed,
      previouslyRevokedBy: changed ? null : record.revokedBy,
      resultLinksRevoked: resultLinksOf[record.keyId] ?? 0,
    });
  }
  outcome.kept = rolled.map((k) => ({
    keyId: k.keyId,
    replaces: k.rotatedFrom!,
    status: keyStatus(k),
    resultLinksRevoked: underKept[k.keyId] ?? 0,
  }));
  return outcome;
}
