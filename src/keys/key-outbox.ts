import type { Env } from "../env";
import type { KeyOutboxEntry, KeyOutboxFacts } from "../limits/guard-protocol";
import { writeAuditOnce, type AuditEntry } from "../audit/audit-log";
import { markRevoked, setExpiry } from "./key-store";

/**
 * Makes D1 and the audit log say what the guard decided about keys (a KeyOutboxEntry and
 * the guard's facts): D1 first, then the result links (ZSky), then the audit entries. Every
 * write is idempotent, so the caller delivers it and, if the caller died before it
 * acknowledged the entry, the guard's alarm delivers it again; nothing is written twice.
 * `refuseResultLinks` refuses one key's result links and says how many stored results
 * they could open (the guard's refuseResultLinks, called from the isolate or in the
 * guard); those numbers are returned per key. The guard's own deliveries say so in their
 * audit entries (`completed_by: "guard"`): the call that asked for the decision did not
 * live to record it.
 */
export async function deliverKeyOutbox(
  env: Env,
  entry: KeyOutboxEntry,
  facts: KeyOutboxFacts,
  refuseResultLinks: (keyId: string) => number | Promise<number>,
  byGuard = false,
): Promise<Record<string, number>> {
  const revoked = entry.revoked?.keyIds ?? facts.keysRevoked ?? [];
  if (entry.revoked) await markRevoked(env, revoked, entry.revoked.by, entry.revoked, entry.at);
  if (entry.ended !== undefined && facts.endsAt !== undefined) await setExpiry(env, entry.ended, facts.endsAt);
  const linksOf: Record<string, number> = {};
  for (const keyId of entry.refuseResultLinksOf ?? []) linksOf[keyId] = await refuseResultLinks(keyId);
  for (const audit of auditOf(entry, facts, linksOf, byGuard)) await writeAuditOnce(env, audit, entry.at);
  return linksOf;
}

/**
 * The entry's audit entries with the guard's facts in the ones they concern: the keys an
 * account-wide revoke took, a rolled key's end, the result links cut (`linksOf`, per key).
 */
export function auditOf(entry: KeyOutboxEntry, facts: KeyOutboxFacts, linksOf: Record<string, number>, byGuard = false): AuditEntry[] {
  const revoked = entry.revoked?.keyIds ?? facts.keysRevoked ?? [];
  // Links cut under keys other than the revoked ones (a leaked key's kept successors).
  const under = Object.fromEntries(Object.entries(linksOf).filter(([keyId]) => !revoked.includes(keyId)));
  return entry.audit.map((audit) => {
    const decided = {
      ...(entry.revoked && !entry.revoked.keyIds ? { keys_revoked: revoked } : {}),
      ...(audit.target === entry.ended && facts.endsAt !== undefined ? { old_key_ends_at: facts.endsAt } : {}),
      ...(entry.refuseResultLinksOf ? { result_links_revoked: Object.values(linksOf).reduce((sum, n) => sum + n, 0) } : {}),
      ...(Object.keys(under).length > 0 ? { result_links_revoked_under: under } : {}),
      ...(byGuard ? { completed_by: "guard" } : {}),
    };
    return { ...audit, detail: { ...audit.detail, ...decided } };
  });
}
