import { MAX_LEASE_MS, type LeaseGrant, type LeaseTag } from "../limits/guard-protocol";
import { renamedSubject } from "./sliding-log";
import * as clock from "../util/clock";

/**
 * Leases (docs/design.md, section 8): the guard may hand an isolate up to k admissions
 * for one credential and route at once, to spend locally for `ttlMs`, so a hot key costs
 * one guard call per lease instead of one per request.
 *
 * Why windows stay exact: a lease's k tokens are counted in every window at the lease's
 * expiry E (the latest moment one can be spent), and granted only while the window has
 * room for all k. Take any interval (s, s+W] and, among the leases with a request in it,
 * the one granted last, at G <= s+W. Every other such lease was granted earlier and spent
 * a token after s, so its E > s >= G-W: it was counted when G was granted. The check at G
 * therefore bounds the whole interval by the limit. Single admissions are the k = 1 case
 * with E = now.
 *
 * Why revocation stays instant: every change that would refuse a leased credential
 * (revoke, rotate, suspend, purge, limit change, logout) is applied first, so no new
 * lease is granted, and then returns only once every lease it affects has expired
 * (`drained`). Lease ends are kept in memory per tag (guard-protocol.ts `leaseTag`), and
 * the latest one is also stored: after a restart the guard cannot know which
 * credentials the previous instance leased, so it waits for all of them.
 *
 * Isolates measure a lease from the moment they asked for it, which is before the guard
 * granted it, so an isolate always stops spending before the guard stops waiting.
 */

/** What a lease counted, so unspent tokens can be taken back. */
export interface CountedLease {
  /** Guard-clock time its tokens were counted at. */
  at: number;
  tokens: number;
  subjects: string[];
  /** Tokens spent at the grant: 1 for an admission's lease (its own request), 0 for a renewal's. */
  spentAtGrant: number;
  /** Guard-clock time it was granted. */
  grantedAt: number;
}

/** How far past a lease's end the stored horizon is put (grant): what a restarted guard may wait beyond the leases it granted. */
export const HORIZON_LEAD_MS = 3 * MAX_LEASE_MS;
/** Bounds the in-memory bookkeeping; a lease dropped from it only loses its refund. */
const MAX_TRACKED = 4_096;

export class LeaseRegistry {
  /** Per credential tag, when (ms) its last lease ends. */
  private readonly endsByTag = new Map<LeaseTag, number>();
  private readonly counted = new Map<string, CountedLease>();
  /** When the previous instance's last lease ended (leases it granted are unknown to this one). */
  private readonly inheritedEnd: number;
  private storedEnd: number;

  constructor(private readonly sql: SqlStorage) {
    this.inheritedEnd = sql.exec<{ ends_at: number }>("SELECT ends_at FROM lease_horizon").toArray()[0]?.ends_at ?? 0;
    this.storedEnd = this.inheritedEnd;
  }

  grant(tags: LeaseTag[], ttlMs: number, lease: CountedLease): LeaseGrant {
    const id = crypto.randomUUID();
    if (this.counted.size >= MAX_TRACKED) this.counted.delete(this.counted.keys().next().value!);
    this.counted.set(id, lease);
    this.vouch(tags, ttlMs);
    return { id, tokens: lease.tokens, ttlMs };
  }

  /**
   * Lets an isolate admit on the credential of `tags` for `ms` without asking: a lease's
   * grant, or a credential vouched for to spend its isolate's share of a window set
   * (account-guard.ts `vouch`). Held like a lease, and stored like one, so a restart waits
   * for it too.
   */
  vouch(tags: LeaseTag[], ms: number): void {
    const ends = this.hold(tags, ms);
    if (ends > this.storedEnd) {
      // Stored HORIZON_LEAD_MS ahead, so a guard granting writes the horizon about once
      // that long rather than once a grant (a slow key far from its guard is granted a
      // lease a request, and every write is a row); a restart then waits at most that much longer.
      this.storedEnd = ends + HORIZON_LEAD_MS;
      this.sql.exec("INSERT OR REPLACE INTO lease_horizon (id, ends_at) VALUES (1, ?)", this.storedEnd);
    }
  }

  /**
   * A refusal an isolate may repeat for `ms` (a lease of no tokens): a mutation of its
   * tags waits for it. Memory only, unlike a grant: after a restart an isolate may still
   * repeat a refusal to a credential revoked meanwhile, which refuses it all the same.
   */
  hold(tags: LeaseTag[], ms: number): number {
    const ends = clock.now() + ms;
    if (this.endsByTag.size >= MAX_TRACKED) this.forgetEnded();
    for (const tag of tags) this.endsByTag.set(tag, Math.max(ends, this.endsByTag.get(tag) ?? 0));
    return ends;
  }

  /**
   * A lease handed back, once: how many of its tokens to un-count (`unspent`), how many
   * were spent, and when the last was at the latest (`spentBy`, guard clock, never past
   * its end); undefined if unknown or handed back already.
   */
  takeBack(
    id: string,
    unspent: number,
    lastSpentMs?: number,
  ): (CountedLease & { unspent: number; spent: number; spentBy: number }) | undefined {
    const lease = this.counted.get(id);
    if (!lease) return undefined;
    this.counted.delete(id);
    const back = Math.min(Math.max(0, Math.floor(unspent)), lease.tokens - lease.spentAtGrant);
    const by = lastSpentMs === undefined || !(lastSpentMs >= 0) ? lease.at : Math.min(lease.at, lease.grantedAt + Math.ceil(lastSpentMs));
    return { ...lease, unspent: back, spent: lease.tokens - back, spentBy: by };
  }

  /**
   * Resolves once no lease of any of `tags` can still be spent (and, in the first moments
   * after a restart, none of the previous instance's). Callers apply their change first,
   * so a repeat of a call whose wait a restart cut short still waits here.
   */
  async drained(tags: LeaseTag[]): Promise<void> {
    const ends = Math.max(this.inheritedEnd, ...tags.map((tag) => this.endsByTag.get(tag) ?? 0));
    const wait = ends - clock.now();
    if (wait > 0) await clock.sleep(wait);
  }

  /** A rotated key's windows moved to the new key (SlidingLog.rename): so do its leases' refunds. */
  renameSubjects(from: string, to: string): void {
    for (const lease of this.counted.values()) {
      lease.subjects = lease.subjects.map((subject) => renamedSubject(subject, from, to) ?? subject);
    }
  }

  private forgetEnded(): void {
    const now = clock.now();
    for (const [tag, ends] of this.endsByTag) if (ends <= now) this.endsByTag.delete(tag);
  }
}
