import type { Settings } from "../config/settings";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";
import { MAX_LEASE_TOKENS, type AdmitDecision, type LeaseRequest } from "../limits/guard-protocol";

/**
 * The isolate's side of guard leases (guard/lease-registry.ts has the guard's side and why
 * they keep windows exact and revocation instant). A credential calling one route at a
 * high rate gets up to k admissions per guard call; the other requests of the lease are
 * admitted here, without a call, until its tokens or its time run out. A quiet
 * credential asks for nothing and every request is decided by the guard as before.
 */

type Allowed = Extract<AdmitDecision, { allow: true }>;
type Returned = NonNullable<LeaseRequest["returns"]>;

/** How the book reaches the credential's guard, and keeps work alive after a response. */
export interface GuardLink {
  ask(lease: LeaseRequest): Promise<AdmitDecision>;
  /** Hands unspent tokens back without asking for anything. */
  refund(returns: Returned): Promise<void>;
  waitUntil(work: Promise<unknown>): void;
}

interface Held {
  id: string;
  tokens: number;
  spent: number;
  /** Local time after which no token is spent. */
  endsAt: number;
  /** The guard's answer to the request that asked for the lease. */
  decision: Allowed;
}

interface Pending {
  done: Promise<void>;
  /** Tokens the lease asked for that requests arriving meanwhile may still wait for. */
  slots: number;
}

interface Entry {
  held: Held[];
  /** Leases being asked for: a request arriving meanwhile waits for one of them, once. */
  pending: Pending[];
  /** Recent arrival times (bounded), to size the next lease to the demand. */
  arrivals: number[];
  /** Unspent tokens of ended leases, handed back with the next guard call or when the lease ends. */
  returns: Returned;
}

/**
 * A lease ends this much earlier here than at the guard. The isolate measures from
 * before its call (so already before the grant); the margin also covers workerd's
 * clock, which only advances between I/O events.
 */
const SAFETY_MARGIN_MS = 25;
const MAX_ENTRIES = 1_024;

export class LeaseBook {
  private readonly entries = new Lru<string, Entry>(MAX_ENTRIES);

  constructor(private readonly ttlMs: number) {}

  /**
   * Admits from a held lease, or asks the guard: for a lease sized to the recent demand
   * (as many as arrived within one lease life) when the credential is hot, for this
   * request alone otherwise. A request waits at most once, for a lease already asked
   * for that has a token promised to it, and then makes at most one guard call of its own.
   */
  async admit(key: string, guard: GuardLink): Promise<AdmitDecision> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { held: [], pending: [], arrivals: [], returns: [] };
      this.entries.set(key, entry);
    }
    this.noteArrival(entry);
    const spent = this.spend(entry);
    if (spent) return spent;
    const promised = entry.pending.find((p) => p.slots > 0);
    if (promised) {
      promised.slots--;
      await promised.done;
      const after = this.spend(entry);
      if (after) return after;
    }
    // Only a request that found no token promised asks for a lease (which promises the
    // next arrivals theirs). One that waited and found none (the lease was smaller than
    // asked, or refused) goes to the guard alone: a crowd of such waiters each asking for
    // a lease would hold many tokens idle.
    const demand = entry.arrivals.length;
    const want = !promised && demand >= 2 ? Math.min(MAX_LEASE_TOKENS, demand) : 0;
    const request: LeaseRequest = { want, ttlMs: this.ttlMs, returns: entry.returns.splice(0) };
    if (want === 0) return guard.ask(request);

    const askedAt = clock.now();
    const answer = guard.ask(request);
    const leasing = entry;
    const pending: Pending = {
      slots: want - 1,
      done: answer.then(
        (decision) => {
          if (decision.allow && decision.lease) {
            const { id, tokens, ttlMs } = decision.lease;
            const endsAt = askedAt + ttlMs - SAFETY_MARGIN_MS;
            leasing.held.push({ id, tokens, spent: 1, endsAt, decision });
            // What the lease did not spend goes back when it ends, not only with this
            // isolate's next call for the credential (which may never come); never later
            // than a lease life from now, whatever the clock did meanwhile.
            const wait = Math.min(this.ttlMs, Math.max(0, endsAt - clock.now())) + 1;
            guard.waitUntil(clock.after(wait, () => this.refundEnded(leasing, guard)));
          }
        },
        () => undefined, // the asker gets the error; its waiters go to the guard themselves
      ),
    };
    entry.pending.push(pending);
    void pending.done.then(() => leasing.pending.splice(leasing.pending.indexOf(pending), 1));
    return answer;
  }

  /** Hands back what the credential's ended leases did not spend. */
  private async refundEnded(entry: Entry, guard: GuardLink): Promise<void> {
    this.retireEnded(entry);
    const returns = entry.returns.splice(0);
    if (returns.length > 0) await guard.refund(returns).catch(() => undefined); // best effort: they leave the window anyway
  }

  /** One admission from a held lease with tokens and time left; retires the others. */
  private spend(entry: Entry): AdmitDecision | undefined {
    this.retireEnded(entry);
    const held = entry.held[0];
    if (!held) return undefined;
    const earlier = held.spent++;
    // Each request reports the windows as if counted one by one.
    return { ...held.decision, windows: held.decision.windows.map((w) => ({ ...w, remaining: Math.max(0, w.remaining - earlier) })) };
  }

  /**
   * Drops the leading leases that are out of tokens or time; what an ended one did not
   * spend is queued to go back. Tokens are spent from the first lease only, so only the
   * front needs to be live. Leases end in the order asked, except when a key's expiry
   * shortened a later one: that one waits behind the live one to be retired, unspent.
   */
  private retireEnded(entry: Entry): void {
    const now = clock.now();
    while (entry.held.length > 0) {
      const held = entry.held[0]!;
      if (held.spent < held.tokens && now < held.endsAt) return;
      if (held.spent < held.tokens) entry.returns.push({ id: held.id, unspent: held.tokens - held.spent });
      entry.held.shift();
    }
  }

  /** Records an arrival, keeping those within one lease's life (at most MAX_LEASE_TOKENS). */
  private noteArrival(entry: Entry): void {
    const now = clock.now();
    const arrivals = entry.arrivals;
    arrivals.push(now);
    while (arrivals.length > MAX_LEASE_TOKENS || arrivals[0]! <= now - this.ttlMs) arrivals.shift();
  }
}

// One book per parsed settings: a changed configuration (other limits, another lease
// length) starts with no leases rather than spending ones granted under the old one.
const books = new WeakMap<Settings, LeaseBook>();

export function leaseBookFor(settings: Settings): LeaseBook | undefined {
  if (settings.GUARD_LEASE_MS === 0) return undefined;
  let book = books.get(settings);
  if (!book) {
    book = new LeaseBook(settings.GUARD_LEASE_MS);
    books.set(settings, book);
  }
  return book;
}
