import type { AdminBudgetTrip, AdminLoginVerdict } from "../limits/guard-protocol";
import { ADMIN_AUTH_BUDGET, FAILED_ADMIN_AUTH } from "../limits/policies";

/** `admin_failures:<address>` -> that address's failed admin credentials (ms, ascending), in the object's synchronous KV. */
const FAILURES = "admin_failures:";
/** When the current trip of the global budget ends (ms). */
const TRIPPED_UNTIL = "admin_budget_tripped_until";

const ADDRESS_MS = FAILED_ADMIN_AUTH.windowSeconds * 1000;
const BUDGET_MS = ADMIN_AUTH_BUDGET.windowSeconds * 1000;
/** An address's failures are kept as long as either window can still count them. */
const KEEP_MS = Math.max(ADDRESS_MS, BUDGET_MS);

/**
 * Failed admin credentials (admin API token, Cloudflare Access JWT, the console's
 * sign-in), every client address's in the one admin guard, so one object sees both
 * limits at once and decides them exactly:
 * - an address with FAILED_ADMIN_AUTH.limit failures in its window is refused;
 * - once ADMIN_AUTH_BUDGET.limit failures from any addresses fall in the budget's window,
 *   the budget trips for one budget window: meanwhile every address with a failure in
 *   the budget's window is refused, and an address with none never is. The failure that
 *   trips it is told so (once per trip), for one audit entry.
 * Refusals end only with time (nothing lifts them), so an isolate may repeat one until
 * its end. Memory mirrors the KV rows, which are written before the call returns.
 */
export class AdminLogins {
  /** Address -> its failure times within KEEP_MS, ascending; the map in order of each address's last failure. */
  private readonly failures = new Map<string, number[]>();
  /** Every failure within the budget's window, ascending. */
  private budget: number[] = [];
  private trippedUntil: number;

  constructor(private readonly kv: SyncKvStorage) {
    const loaded = [...kv.list<number[]>({ prefix: FAILURES })].sort((a, b) => a[1].at(-1)! - b[1].at(-1)!);
    for (const [key, times] of loaded) this.failures.set(key.slice(FAILURES.length), times);
    this.budget = loaded.flatMap(([, times]) => times).sort((a, b) => a - b);
    this.trippedUntil = kv.get<number>(TRIPPED_UNTIL) ?? 0;
  }

  /** Whether credentials from `address` are refused now, before they are compared. */
  verdict(address: string, now: number): AdminLoginVerdict {
    this.forget(now);
    const times = this.failures.get(address) ?? [];
    const ends: number[] = [];
    const recent = times.filter((t) => t > now - ADDRESS_MS);
    if (recent.length >= FAILED_ADMIN_AUTH.limit) ends.push(recent[recent.length - FAILED_ADMIN_AUTH.limit]! + ADDRESS_MS);
    const last = times.at(-1);
    if (this.trippedUntil > now && last !== undefined && last > now - BUDGET_MS) ends.push(Math.min(this.trippedUntil, last + BUDGET_MS));
    if (ends.length === 0) return { refused: false };
    return { refused: true, retryAfter: Math.max(1, Math.ceil((Math.max(...ends) - now) / 1000)) };
  }

  /** Counts one failure of `address`; says whether this one tripped the budget. */
  fail(address: string, now: number): { verdict: AdminLoginVerdict; tripped: AdminBudgetTrip | null } {
    this.forget(now);
    const times = (this.failures.get(address) ?? []).filter((t) => t > now - KEEP_MS);
    times.push(now);
    this.failures.delete(address);
    this.failures.set(address, times);
    this.kv.put(FAILURES + address, times);
    this.budget.push(now);
    let tripped: AdminBudgetTrip | null = null;
    if (this.budget.length >= ADMIN_AUTH_BUDGET.limit && this.trippedUntil <= now) {
      this.trippedUntil = now + BUDGET_MS;
      this.kv.put(TRIPPED_UNTIL, this.trippedUntil);
      tripped = { failures: this.budget.length, addresses: this.failures.size, until: this.trippedUntil };
    }
    return { verdict: this.verdict(address, now), tripped };
  }

  /** Drops failures no window counts any more, with their rows. */
  private forget(now: number): void {
    let gone = 0;
    while (gone < this.budget.length && this.budget[gone]! <= now - BUDGET_MS) gone++;
    if (gone > 0) this.budget.splice(0, gone);
    for (const [address, times] of this.failures) {
      if (times.at(-1)! > now - KEEP_MS) break;
      this.failures.delete(address);
      this.kv.delete(FAILURES + address);
    }
  }
}
