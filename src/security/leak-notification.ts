import type { Settings } from "../config/settings";
import { randomBase62 } from "../keys/key-format";
import type { KeyRecord } from "../keys/key-store";
import type { LeakOutcome } from "../keys/leaked-keys";
import { toHex } from "../util/hex";
import { hmacKey } from "../util/hmac";
import { utf8 } from "../util/utf8";

/**
 * Tells the deployment's webhook (LEAK_WEBHOOK_URL) that a leaked key was revoked, so the
 * owning account can be told: one POST per leaked key, JSON (`LeakNotification`), signed
 * `Zgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(LEAK_WEBHOOK_SECRET, "<t>.<body>")>`.
 * Sent after the response (waitUntil), retried on a network error or a non-2xx answer
 * after RETRY_DELAYS_MS (all within the 30 s a request's waitUntil work may run); the
 * same `id` on every attempt, so the receiver can drop repeats.
 */
export interface LeakNotification {
  id: string;
  type: "key.leaked";
  created_at: string;
  /** Who reported it: secret-scanning:github, secret-scanning:gitlab, report:public, admin:<who>. */
  source: string;
  /** Where the key was found, when the report says (a commit, an issue comment). */
  source_url: string | null;
  key: { id: string; product: string; account: string; label: string | null; prefix: string; last4: string };
  revoked: { id: string; why: string }[];
  kept: { id: string; why: "rolled_by_admin" }[];
}

export const RETRY_DELAYS_MS = [500, 2_000, 8_000];
const ATTEMPT_TIMEOUT_MS = 5_000;

export function leakNotification(source: string, sourceUrl: string | null, leaked: KeyRecord, outcome: LeakOutcome): LeakNotification {
  return {
    id: `evt_${randomBase62(20)}`,
    type: "key.leaked",
    created_at: new Date().toISOString(),
    source,
    source_url: sourceUrl,
    key: {
      id: leaked.keyId,
      product: leaked.product,
      account: leaked.accountId,
      label: leaked.label,
      prefix: leaked.prefix,
      last4: leaked.last4,
    },
    revoked: outcome.revoked.filter((r) => !r.alreadyRevoked).map((r) => ({ id: r.keyId, why: r.why })),
    kept: outcome.kept.map((k) => ({ id: k.keyId, why: "rolled_by_admin" as const })),
  };
}

async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  return toHex(await crypto.subtle.sign("HMAC", await hmacKey(secret), utf8(`${timestamp}.${body}`)));
}

/** Delivers the notification (nothing when no webhook is configured); never throws: a lost notice is logged. */
export async function sendLeakNotification(settings: Settings, notice: LeakNotification): Promise<void> {
  if (!settings.LEAK_WEBHOOK_URL || !settings.LEAK_WEBHOOK_SECRET || settings.disabled["leak-webhook"]) return;
  const body = JSON.stringify(notice);
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[attempt - 1]));
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const response = await fetch(settings.LEAK_WEBHOOK_URL, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "Zgate-Webhook-Id": notice.id,
          "Zgate-Signature": `t=${timestamp},v1=${await signature(settings.LEAK_WEBHOOK_SECRET, timestamp, body)}`,
        },
        body,
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // Retried below.
    }
  }
  console.error(
    JSON.stringify({ msg: "leak_notification_failed", id: notice.id, key_id: notice.key.id, attempts: RETRY_DELAYS_MS.length + 1 }),
  );
}
