import type { Context } from "hono";
import type { AppEnv } from "../http/context";
import { classifyKey, hashKey } from "../keys/key-format";
import { hasAuditEntry } from "../audit/audit-log";
import { findKeyByHash, getKey, keyStatus } from "../keys/key-store";
import { revokeLeakedKey } from "../keys/leaked-keys";
import { leakNotification, sendLeakNotification } from "./leak-notification";

/**
 * One reported token, from any intake (secret-scanning partners, the public report):
 * revoked with its result links when it is a zgate key that exists (and, for a partner
 * that signed its report, with the keys rotated from it), audited under the reporter
 * (`secret-scanning:github`, `report:public`, ...) with where it was found, and announced
 * to the leak webhook. Only checksum-valid zgate keys are looked up: anything else is no
 * key of ours (and costs no storage read). A key this reporter already reported changes
 * nothing (partners retry and repeat), and an anonymous report of a key that no longer
 * works (rotated, revoked, expired) changes nothing at all.
 */
export interface LeakReport {
  token: string;
  /** The audit actor. */
  reporter: string;
  /** The reporter proved who it is (a signed partner report): its report also revokes the keys rotated from the leaked one. */
  authenticated: boolean;
  sourceUrl: string | null;
  /** More for the audit entry (the partner's token type, the reporter's address); never a secret. */
  detail?: Record<string, unknown>;
}

export interface ReportedToken {
  hash: string;
  /** A zgate key that exists (now revoked). */
  truePositive: boolean;
}

export async function takeLeakReport(c: Context<AppEnv>, report: LeakReport): Promise<ReportedToken> {
  const hash = await hashKey(report.token);
  if (classifyKey(report.token) !== "valid") return { hash, truePositive: false };
  const waitUntil = (p: Promise<unknown>) => c.executionCtx.waitUntil(p);
  const ref = await findKeyByHash(c.env, hash, waitUntil, { rememberUnknown: true });
  const record = ref && (await getKey(c.env, ref.keyId));
  if (!record) return { hash, truePositive: false };
  // Anyone may hold a dead key (its customer rotated it away): reported anonymously, it is already what a report would make it.
  if (!report.authenticated && keyStatus(record) !== "active") return { hash, truePositive: true };
  const repeated =
    record.revokedBy === report.reporter ||
    (await hasAuditEntry(c.env, { target: record.keyId, actor: report.reporter, action: "key.revoke_leaked" }));
  if (repeated) return { hash, truePositive: true };
  const outcome = await revokeLeakedKey(
    c.env,
    record,
    { actor: report.reporter, requestId: c.get("requestId") },
    "key.revoke_leaked",
    {
      reason: `leaked: reported by ${report.reporter}`,
      ticket: null,
      revokeResultLinks: true,
      detail: { source_url: report.sourceUrl, ...report.detail },
    },
    report.authenticated,
  );
  waitUntil(sendLeakNotification(c.get("settings"), leakNotification(report.reporter, report.sourceUrl, record, outcome)));
  return { hash, truePositive: true };
}

/** Each distinct token of a batch once, one after another (a batch holds few; each revoke waits for its key's leases). */
export async function takeLeakReports(c: Context<AppEnv>, reports: LeakReport[]): Promise<Map<string, ReportedToken>> {
  const answers = new Map<string, ReportedToken>();
  for (const report of reports) {
    if (!answers.has(report.token)) answers.set(report.token, await takeLeakReport(c, report));
  }
  return answers;
}
