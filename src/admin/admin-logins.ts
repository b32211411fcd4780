import type { Env } from "../env";
import type { AdminBudgetTrip } from "../limits/guard-protocol";
import { refuseIfOverLimit, rememberRefusal } from "../identify/failed-auth";
import { adminGuardFor, guardUnavailable } from "../admit/guard-client";

/**
 * Admin credentials (ADMIN_TOKEN, a Cloudflare Access JWT, the console's sign-in) are
 * limited per client address and by a global budget, both decided by the one admin
 * guard (guard/admin-logins.ts). A refused address is refused before its credential is
 * compared, so past its limit even the right token is a 429 and guessing learns
 * nothing. Each admin call with a credential asks the guard once (admin calls are
 * few); a refusal is remembered in the isolate until it ends, as time alone ends it.
 */
const subject = (address: string) => ({ guard: "admin" as const, address });

/** 429 when admin credentials from `address` are refused now; a request without an address is not limited (it did not come through Cloudflare). */
export async function refuseLimitedAdminAddress(env: Env, address: string | undefined): Promise<void> {
  if (!address) return;
  refuseIfOverLimit(subject(address));
  const verdict = await adminGuardFor(env).adminLoginVerdict(address).catch(guardUnavailable);
  if (verdict.refused) throw rememberRefusal(subject(address), verdict.retryAfter);
}

/** Counts a failed admin credential; returns the budget's trip when this failure tripped it (the caller audits it). */
export async function countAdminFailure(env: Env, address: string | undefined): Promise<AdminBudgetTrip | null> {
  if (!address) return null;
  const { verdict, tripped } = await adminGuardFor(env).countAdminFailure(address).catch(guardUnavailable);
  // This failure is answered 401; the address's next credential is refused here.
  if (verdict.refused) rememberRefusal(subject(address), verdict.retryAfter);
  return tripped;
}
