import type { Settings } from "../config/settings";
import { Lru } from "../util/lru";
import * as clock from "../util/clock";
import { retryAfterSeconds } from "../limits/calendar";
import {
  MAX_IDLE_MS,
  MAX_LEASE_MS,
  MAX_LEASE_TOKENS,
  shareable,
  type AdmitDecision,
  type AdmitRequest,
  type LeaseRequest,
  type Pace,
  type ShareAnswer,
  type ShareRenewal,
  type Vouched,
  type WindowReport,
} from "../limits/guard-protocol";

/**
 * The isolate's side of guard leases (guard/lease-registry.ts has the guard's side and why
 * they keep windows exact and revocation instant). A subject (one credential on one route,
 * or one client address on one route) that calls again is granted a lease: tokens for as
 * many requests as it made here in the last lease life, spent here without a guard call
 * until they or their time run out. A lease is renewed ahead of need, in the background
 * (waitUntil), never on a request's path:
 * - on a request: one admitted from a lease that is nearly out of tokens or time asks for
 *   the next lease after its answer;
 * - while the guard is far (its measured round trip at least FAR_RTT_MS), also between
 *   requests, timed to the subject's next request: a subject slower than a lease life is
 *   renewed once per request, one round trip before its usual gap has passed, so a
 *   subject calling every few seconds finds a live token every time at the price of one
 *   guard call per request (what it cost before any lease). One that comes late is kept
 *   alive lease after lease until twice its usual gap has passed (at most MAX_IDLE_MS).
 * Renewals are batched per guard object: one call renews every lease this isolate holds
 * on it (all its keys and routes) that is due within half a lease life, and hands back
 * the unspent tokens of leases that ended (take, then give: the old lease is spent until
 * the new one arrives). So one account's guard sees at most one renewal call per isolate
 * per half lease life, however many of its keys and routes are busy.
 *
 * Lease life grows with the measured round trip (a lease must outlive its own journey):
 * GUARD_LEASE_MS near the guard, up to MAX_LEASE_MS far from it, never longer than a
 * revoke's budget allows (REVOKE_BUDGET_MS less the revoke's own round trips).
 *
 * Shares: a busy account's traffic in one isolate is spread over many subjects (issue 25's:
 * 50 keys x 2 routes, each a request a second or so), too slow each for a lease of its own,
 * yet all counted in the same windows. So once a guard's subjects here make SHARE_MIN
 * requests a share life and none of them most of it, a subject asking the guard also asks
 * to join its share: the guard vouches for its credential (held like a lease) and names its
 * window set, and from then on it spends the share, one lease of that window set which every
 * member spends (guard-protocol.ts Vouched). One call per share life renews the share's
 * lease and vouches for its members again, at most once per half a life: a bounded rate per
 * isolate, however many keys and routes. A share whose last answer left its windows no room
 * refuses its members here, once its tokens are out, until its next renewal lands.
 */

type Allowed = Extract<AdmitDecision, { allow: true }>;
type Refused = Extract<AdmitDecision, { retryAfter: number }>;
type Returned = NonNullable<LeaseRequest["returns"]>;

/** How the book reaches one guard object, and keeps work alive after a response. */
export interface GuardLink {
  /** The guard object's name: leases on one object are renewed together. */
  name: string;
  ask(request: AdmitRequest): Promise<AdmitDecision>;
  /** One call for many subjects: each request asks for a lease of spare tokens only. */
  renew(requests: AdmitRequest[], returns: Returned): Promise<AdmitDecision[]>;
  /** One call for a guard's shares: their members vouched for again, their next leases. */
  renewShares(shares: ShareRenewal[], returns: Returned): Promise<ShareAnswer[]>;
  /** Hands unspent tokens back without asking for anything. */
  refund(returns: Returned): Promise<void>;
  waitUntil(work: Promise<unknown>): void;
}

interface Held {
  id: string;
  tokens: number;
  spent: number;
  /** Local time it was asked for, and of its last spend. */
  askedAt: number;
  lastSpentAt: number;
  /** Local time after which no token is spent. */
  endsAt: number;
  /** The guard's answer that granted it (its windows, the key's facts). */
  decision: Allowed;
}

interface Pending {
  done: Promise<void>;
  /** Tokens the lease asked for that requests arriving meanwhile may still wait for. */
  slots: number;
}

interface Subject {
  key: string;
  group: Group;
  /** The subject's latest request, without a lease: what a renewal asks about. */
  request: AdmitRequest;
  held: Held[];
  /** Leases being asked for: a request arriving meanwhile waits for one of them, once. */
  pending: Pending[];
  /** Arrivals counted in two buckets of one lease life each: the rate, in constant memory. */
  bucketStart: number;
  current: number;
  previous: number;
  lastArrival: number;
  /** Mean gap between arrivals (ms), once there were two, or as the guard hinted it after the first. */
  gap?: number;
  /** `gap` is the guard's hint (guard/pace-log.ts): the subject's first gap here replaces it. */
  hinted?: boolean;
  /** How much earlier than expected (its last arrival and usual gap) requests came (ms, a moving average; late ones count 0). */
  early: number;
  /** When a renewal last asked for this subject (0: never). */
  renewedAt: number;
  /** The share it spends while the guard vouches for it. */
  share?: Share;
  /** Its credential was refused (revoked, expired): never renewed again, however long it keeps calling. */
  refused?: boolean;
}

/** Arrivals counted in two buckets of one life each: a rate in constant memory. */
interface Arrivals {
  start: number;
  current: number;
  previous: number;
}

/** An isolate's share of one window set on one guard (see the header). */
interface Share {
  name: string;
  group: Group;
  /** Members, until when (local time) the guard vouches for each, and the facts their admissions report. */
  members: Map<Subject, { until: number; vouched: Vouched }>;
  /** Its leases: tokens any member spends. */
  held: Held[];
  arrivals: Arrivals;
  renewing?: Promise<void>;
  renewedAt: number;
  /** The last answer left its windows no room: members out of tokens are refused until `until` (its next renewal). */
  full?: { until: number; retryAt: number; decision: Refused };
}

interface Group {
  name: string;
  /** The latest request's link to the guard object. */
  link: GuardLink;
  subjects: Set<Subject>;
  /** Unspent tokens of ended leases, handed back with the next call to this guard. */
  returns: Returned;
  /** How many leases ended here with tokens unspent (a count only ever raised): room the guard counted that comes back. */
  freed: number;
  /** Calls on their way to the guard that hand unspent tokens back. */
  handingBack: Set<Promise<unknown>>;
  /** Measured guard round trip (ms, moving average), once one call was timed. */
  rtt?: number;
  /** The latest round trips (a few): the guard is far only if even the quickest of them was slow. */
  trips: number[];
  /** The quickest of `trips` took FAR_RTT_MS or more (isFar): kept as they change, as it is asked on every request. */
  far: boolean;
  renewing?: Promise<void>;
  /** The request whose background step keeps renewing (between requests, far guards only). */
  stepOwner?: object;
  /** Its shares, by the guard's name for their window set; their arrivals, together. */
  shares: Map<string, Share>;
  arrivals: Arrivals;
  sharesRenewing?: Promise<void>;
}

/**
 * A lease ends this much earlier here than at the guard. The isolate measures from
 * before its call (so already before the grant); the margin also covers workerd's
 * clock, which only advances between I/O events.
 */
const SAFETY_MARGIN_MS = 25;
/** A renewal is asked this long (beyond one round trip) before the lease ends: the round trip's jitter. */
const RENEW_MARGIN_MS = 100;
/** Far, a subject's request this much later than expected still finds the lease renewed for it (one later costs a renewal more). */
const LATE_MS = 200;
/** A guard at least this far (round trip, ms) is renewed between requests too. */
export const FAR_RTT_MS = 20;
const TRIPS_KEPT = 8;
/**
 * What a revoke (or rotate, logout) may take in all: it waits for the last lease it affects
 * to end, after its own guard calls (up to three round trips: the admin check, the change,
 * its record's acknowledgement). A far guard's leases live at most this less those trips.
 */
export const REVOKE_BUDGET_MS = 1_300;
const REVOKE_ROUND_TRIPS = 3;
/** Lease life per ms of round trip, above GUARD_LEASE_MS. */
const LIFE_PER_RTT = 10;
/** Idle horizon in units of the subject's usual gap between requests. */
const IDLE_GAPS = 2;
/** Spare tokens a far lease asks beyond the observed rate: a quarter more. */
const RATE_MARGIN = 1.25;
const MAX_SUBJECTS = 1_024;
/** Ended leases kept to hand back per guard; past it, one all spent is dropped (its tokens stay counted at its end). */
const MAX_RETURNS = 256;
const MAX_GROUPS = 1_024;
/** A guard's subjects here join shares once they make this many requests a share life (a renewal then serves at least this many). */
export const SHARE_MIN = 8;

export class LeaseBook {
  private readonly subjects = new Lru<string, Subject>(MAX_SUBJECTS);
  private readonly groups = new Lru<string, Group>(MAX_GROUPS);
  /** This book's name in the guards' pace logs (guard-protocol.ts Pace). */
  private readonly isolate = crypto.getRandomValues(new Uint32Array(1))[0]!;

  /** `baseMs`: the lease life near the guard (GUARD_LEASE_MS). */
  constructor(private readonly baseMs: number) {}

  /**
   * Admits from a held lease, or asks the guard (for a lease when the subject called here
   * before, for this request alone otherwise). A request waits at most once, for a lease
   * already asked for that has a token promised to it, and then makes at most one guard
   * call of its own.
   */
  admit(key: string, request: AdmitRequest, link: GuardLink): Promise<AdmitDecision> {
    const subject = this.subjectFor(key, request, link);
    const group = subject.group;
    this.noteArrival(subject, group);
    countArrival(group.arrivals, this.shareLife(group));
    return subject.share ? this.admitShared(subject, request, link) : this.admitHeld(subject, request, link);
  }

  /** A share's member: from its share, else as any subject. */
  private async admitShared(subject: Subject, request: AdmitRequest, link: GuardLink): Promise<AdmitDecision> {
    return (await this.fromShare(subject, link)) ?? this.admitHeld(subject, request, link);
  }

  /**
   * From a lease the subject holds, with no async step of its own: most requests of a busy
   * subject end here, so this is kept small (the runtime optimizes a small function sooner).
   */
  private admitHeld(subject: Subject, request: AdmitRequest, link: GuardLink): Promise<AdmitDecision> {
    const spent = this.spend(subject);
    if (!spent) return this.admitAsking(subject, request, link);
    this.renewIfDue(subject, link);
    this.keepAlive(subject.group, link);
    return Promise.resolve(spent);
  }

  /** No token held: one promised to it by a lease under way, else the guard's answer. */
  private async admitAsking(subject: Subject, request: AdmitRequest, link: GuardLink): Promise<AdmitDecision> {
    const group = subject.group;
    const promised = subject.pending.find((p) => p.slots > 0);
    if (promised) {
      promised.slots--;
      await promised.done;
      const after = this.spend(subject);
      if (after) return after;
    }
    // Only a request that found no token promised asks for a lease (which promises the
    // next arrivals theirs). One that waited and found none (the lease was smaller than
    // asked, or refused) goes to the guard alone: a crowd of such waiters each asking for
    // a lease would hold many tokens idle.
    const life = this.lifeOf(group);
    // A member of a busy share asks to be vouched for (again) rather than for a lease of its own.
    const join = this.joinWanted(subject, request) ? { ttlMs: this.shareLife(group) } : undefined;
    const spare = promised || join ? 0 : this.spareWanted(subject, group, life, true);
    const returns = group.returns.splice(0);
    const lease: LeaseRequest = { want: spare > 0 ? spare + 1 : 0, ttlMs: life, returns };
    const askedAt = clock.now();
    const pace = { ...this.paceOf(subject), ask: subject.gap === undefined || undefined };
    const seen = this.returnsSeen(group);
    // The answer and the lease it grants, held at once: a refused request (below) waits for
    // this, never for another request's refusal, so refused requests can wait for each other's leases.
    const landed = link.ask({ ...request, lease, join, pace }).then((decision) => {
      this.timed(group, askedAt);
      // A subject new here, far from the guard: the guard's hint of its gap times its first
      // renewal (keepAlive, below), for its second request here, until its own gap is known.
      if (decision.allow && decision.gapHint !== undefined && subject.gap === undefined && this.isFar(group)) {
        subject.gap = decision.gapHint;
        subject.hinted = true;
      }
      if ((decision.allow || decision.refusal === "rate_limited") && decision.vouched) this.enrol(subject, decision.vouched, askedAt, link);
      if (!decision.allow && decision.refusal === "credential") subject.refused = true;
      if (lease.want > 0 && decision.allow && decision.lease) this.hold(subject, decision, askedAt, 1, link);
      return decision;
    });
    this.handsBack(group, returns, landed);
    const answer = landed.then(async (decision) => {
      // Far, the next token is renewed for ahead of the subject's next request (a share member's with its share).
      if (lease.want === 0) this.keepAlive(group, link);
      if (decision.allow || decision.refusal !== "rate_limited") return decision;
      const refused = await this.unlessRoomHere(subject, request, decision, link, seen);
      // Its windows are full: so are every member's of its share, refused here until its next renewal.
      if (!refused.allow && refused.refusal === "rate_limited" && decision.vouched && subject.share)
        this.shareFull(subject.share, refused, askedAt);
      return refused;
    });
    if (lease.want === 0) return answer;
    const pending: Pending = {
      slots: spare,
      done: landed.then(
        () => this.keepAlive(group, link),
        () => undefined, // the asker gets the error; its waiters go to the guard themselves
      ),
    };
    subject.pending.push(pending);
    void pending.done.then(() => subject.pending.splice(subject.pending.indexOf(pending), 1));
    return answer;
  }

  /** What the guard's pace log hears of this subject with each ask and renewal: its gap here, once measured. */
  private paceOf(subject: Subject): Pace {
    return { subject: subject.key, isolate: this.isolate, gap: subject.hinted ? undefined : subject.gap };
  }

  private subjectFor(key: string, request: AdmitRequest, link: GuardLink): Subject {
    let group = this.groups.get(link.name);
    if (!group) {
      // Every field from the start, the optional ones too: fields added as events come (a
      // timed call, a renewal, a share) gave groups many layouts, and the reads of every
      // request (lifeOf, isFar) met so many that V8 looked each up (megamorphic, --log-ic).
      group = {
        name: link.name,
        link,
        subjects: new Set(),
        returns: [],
        freed: 0,
        handingBack: new Set(),
        rtt: undefined,
        trips: [],
        far: false,
        renewing: undefined,
        stepOwner: undefined,
        shares: new Map(),
        arrivals: arrivals(clock.now()),
        sharesRenewing: undefined,
      };
      this.groups.set(link.name, group);
    }
    group.link = link;
    let subject = this.subjects.get(key);
    if (!subject || subject.group !== group) {
      const now = clock.now();
      if (group.subjects.size >= MAX_SUBJECTS) this.forgetEvicted(group);
      // Every field from the start, as for groups: one layout for every subject.
      subject = {
        key,
        group,
        request,
        held: [],
        pending: [],
        bucketStart: now,
        current: 0,
        previous: 0,
        lastArrival: -Infinity,
        gap: undefined,
        hinted: undefined,
        early: 0,
        renewedAt: 0,
        share: undefined,
        refused: undefined,
      };
      this.subjects.set(key, subject);
      group.subjects.add(subject);
    }
    subject.request = request;
    return subject;
  }

  /** Drops from a guard's set the subjects the book no longer holds (evicted as least recently used). */
  private forgetEvicted(group: Group): void {
    for (const subject of group.subjects) {
      // Map's own get: the book's would count as a use.
      if (Map.prototype.get.call(this.subjects, subject.key) !== subject) group.subjects.delete(subject);
    }
  }

  /** Counts an arrival in the rate buckets and the gap average. */
  private noteArrival(subject: Subject, group: Group): void {
    const now = clock.now();
    const life = this.lifeOf(group);
    const elapsed = now - subject.bucketStart;
    if (elapsed >= 2 * life) {
      subject.previous = 0;
      subject.current = 0;
      subject.bucketStart = now;
    } else if (elapsed >= life) {
      subject.previous = subject.current;
      subject.current = 0;
      subject.bucketStart += life;
    }
    if (subject.hinted) {
      subject.gap = now - subject.lastArrival;
      subject.hinted = false;
    } else if (subject.lastArrival > -Infinity) {
      const gap = now - subject.lastArrival;
      // Quicker to shorten than to lengthen: a far subject's renewal is timed by it, and a
      // request earlier than expected waits for the guard, a later one only costs a renewal more.
      const weight = subject.gap !== undefined && gap < subject.gap ? 0.7 : 0.3;
      if (subject.gap !== undefined) subject.early = 0.5 * subject.early + 0.5 * Math.max(0, subject.gap - gap);
      subject.gap = subject.gap === undefined ? gap : (1 - weight) * subject.gap + weight * gap;
    }
    subject.current++;
    subject.lastArrival = now;
  }

  /** Requests the subject made here in about the last lease life, this one excluded. */
  private recent(subject: Subject, life: number): number {
    const into = Math.min(1, Math.max(0, (clock.now() - subject.bucketStart) / life));
    return Math.max(0, Math.round(subject.current + subject.previous * (1 - into)) - 1);
  }

  /**
   * Spare tokens to ask for: as many as the subject's requests in the last lease life (its
   * rate times the life); far from the guard, at least one and a quarter more, so a
   * subject calling every few seconds finds one when it comes. None for a subject's first
   * request near the guard.
   */
  private spareWanted(subject: Subject, group: Group, life: number, asking: boolean): number {
    const recent = this.recent(subject, life);
    const far = this.isFar(group) && subject.gap !== undefined;
    // Near the guard, a subject slower than a lease life would only park tokens.
    if (!far && subject.gap !== undefined && subject.gap >= life) return 0;
    // Far, a subject slower than a lease life would not spend a spare token before it ends:
    // its next token comes from a renewal timed to its next request.
    if (far && asking && subject.gap! >= life) return 0;
    // Asking with a request of its own, the lease holds that one too; a renewal's tokens are all spare.
    const spare = far ? Math.max(1, Math.ceil(recent * RATE_MARGIN)) : asking ? recent : recent + 1;
    return Math.min(spare, MAX_LEASE_TOKENS - 1);
  }

  /**
   * Far: the quickest of the last few round trips took FAR_RTT_MS or more. The quickest,
   * not the average: a loaded isolate's call to a guard next door is sometimes slow (a
   * step started on one such call ends at the next quick one), a guard in another region
   * never quick.
   */
  private isFar(group: Group): boolean {
    return group.far;
  }

  /** The lease life to ask for from this guard: longer the farther it is, within a revoke's budget. */
  private lifeOf(group: Group): number {
    const rtt = group.rtt ?? 0;
    const budget = REVOKE_BUDGET_MS - REVOKE_ROUND_TRIPS * rtt;
    return Math.max(this.baseMs, Math.min(MAX_LEASE_MS, this.baseMs + LIFE_PER_RTT * rtt, budget));
  }

  /**
   * How long before a lease ends its renewal is asked: one round trip, and a margin for
   * its jitter (far), or a quarter of it near the guard, where a lease is short and a
   * renewal arriving late costs a request a call next door.
   */
  private aheadOf(group: Group): number {
    return (group.rtt ?? 0) + (this.isFar(group) ? RENEW_MARGIN_MS : RENEW_MARGIN_MS / 4);
  }

  private timed(group: Group, askedAt: number): void {
    const rtt = clock.now() - askedAt;
    group.rtt = group.rtt === undefined ? rtt : 0.75 * group.rtt + 0.25 * rtt;
    group.trips.push(rtt);
    if (group.trips.length > TRIPS_KEPT) group.trips.shift();
    group.far = Math.min(...group.trips) >= FAR_RTT_MS;
  }

  /** Keeps a granted lease; what it does not spend goes back when it ends (or with the next renewal). */
  private hold(subject: Subject, decision: Allowed, askedAt: number, spent: number, link: GuardLink): void {
    const { id, tokens, ttlMs } = decision.lease!;
    const endsAt = askedAt + ttlMs - SAFETY_MARGIN_MS;
    subject.held.push({ id, tokens, spent, askedAt, lastSpentAt: askedAt, endsAt, decision });
    // Never later than a lease life from now, whatever the clock did meanwhile.
    const wait = Math.min(ttlMs, Math.max(0, endsAt - clock.now())) + 1;
    keep(
      link,
      clock.after(wait, () => this.refundEnded(subject, link)),
    );
  }

  /**
   * Hands back what the subject's ended leases did not spend, unless a background step
   * will renew on this guard soon: it takes them along.
   */
  private async refundEnded(subject: Subject, link: GuardLink): Promise<void> {
    this.retireEnded(subject);
    const group = subject.group;
    if (group.stepOwner !== undefined || group.renewing) return;
    await this.handBack(group, link);
  }

  /**
   * A call of its own for unspent tokens; leases all spent wait for the next call to this
   * guard to ride along (best effort: unspent tokens leave the window anyway).
   */
  private async handBack(group: Group, link: GuardLink): Promise<void> {
    if (!group.returns.some((r) => r.unspent > 0)) return;
    const returns = group.returns.splice(0);
    await this.handsBack(group, returns, link.refund(returns)).catch(() => undefined);
  }

  /**
   * A full window's refusal is the request's answer only once this isolate holds none of
   * the room the guard counted when it refused. Under load a guard's answers come late:
   * requests asked one by one (a lease promised them fewer tokens than it brought them)
   * are decided after a lease granted before them, whose tokens land here when every
   * request has already gone to the guard, end unspent, and go back only after the guard
   * refused them (a 310-request burst on a 300 window: 251 admitted). So the refused
   * request waits for the subject's leases already asked (and its share's renewal) and
   * spends their room; and if unspent tokens of ended leases went back (or were on their
   * way back) since it asked, it asks again once they are back, until no more did.
   */
  private async unlessRoomHere(
    subject: Subject,
    request: AdmitRequest,
    refusal: Refused,
    link: GuardLink,
    seen: { freed: number; handingBack: boolean },
  ): Promise<AdmitDecision> {
    const group = subject.group;
    for (let decision: AdmitDecision = refusal; ;) {
      await Promise.all([...subject.pending.map((p) => p.done), subject.share?.renewing]);
      const spent = this.spend(subject) ?? this.spendOwnShare(subject);
      if (spent) return spent;
      await Promise.allSettled(group.handingBack);
      if (group.freed === seen.freed && !seen.handingBack) return decision;
      seen = this.returnsSeen(group);
      const returns = group.returns.splice(0);
      decision = await this.handsBack(group, returns, link.ask({ ...request, lease: { want: 0, ttlMs: this.lifeOf(group), returns } }));
      if (decision.allow || decision.refusal !== "rate_limited") return decision;
    }
  }

  /**
   * Where this isolate's hand-backs stand as a request asks: how many leases had ended
   * unspent (any ending later is room the guard may have counted against it), and whether
   * one was on its way (the guard may take it after deciding the request).
   */
  private returnsSeen(group: Group): { freed: number; handingBack: boolean } {
    return { freed: group.freed, handingBack: group.handingBack.size > 0 };
  }

  /** `call`, noted while on its way if it hands unspent tokens back (`returns`). */
  private handsBack<T>(group: Group, returns: Returned, call: Promise<T>): Promise<T> {
    if (!returns.some((r) => r.unspent > 0)) return call;
    group.handingBack.add(call);
    const done = () => void group.handingBack.delete(call);
    call.then(done, done);
    return call;
  }

  /** One admission from a held lease with tokens and time left; retires the others. */
  private spend(subject: Subject): AdmitDecision | undefined {
    this.retireEnded(subject);
    const held = subject.held[0];
    if (!held) return undefined;
    const earlier = held.spent++;
    held.lastSpentAt = clock.now();
    // The facts a token carries, not the lease's own terms (`lease`, `vouched`, `gapHint`),
    // field by field: the decision came through RPC, and spreading such an object is the
    // runtime's slow copy, on every request a lease admits.
    const { key, accountPlan, job } = held.decision;
    return { allow: true, key, accountPlan, job, windows: spentWindows(held.decision.windows, earlier) };
  }

  /**
   * Drops the leading leases that are out of tokens or time; what an ended one did not
   * spend is queued to go back. Tokens are spent from the first lease only, so only the
   * front needs to be live. Leases end in the order asked, except when a key's expiry
   * shortened a later one: that one waits behind the live one to be retired, unspent.
   */
  private retireEnded(subject: { held: Held[]; group: Group }): void {
    const now = clock.now();
    while (subject.held.length > 0) {
      const held = subject.held[0]!;
      if (held.spent < held.tokens && now < held.endsAt) return;
      // Handed back even when all were spent (with the next call): the guard then counts them from their last spend, not the lease's end.
      const returns = subject.group.returns;
      returns.push({ id: held.id, unspent: held.tokens - held.spent, lastSpentMs: held.lastSpentAt - held.askedAt });
      if (held.spent < held.tokens) subject.group.freed++;
      if (returns.length > MAX_RETURNS) returns.splice(returns.findIndex((r) => r.unspent === 0) >>> 0, 1);
      subject.held.shift();
    }
  }

  /** Whether the subject's leases run out, of time or of tokens at its usual pace, within `within` ms. */
  private due(subject: Subject, within: number): boolean {
    const now = clock.now();
    // One pass, no arrays: this runs after every request a lease admits.
    let last: Held | undefined;
    let left = 0;
    for (const h of subject.held) {
      if (h.spent >= h.tokens || now >= h.endsAt) continue;
      last = h;
      left += h.tokens - h.spent;
    }
    if (!last) return true;
    // At its usual pace, never more than it made in a lease life (a burst: once its tokens are out).
    const pace = subject.gap !== undefined && subject.gap > 0 ? Math.ceil(within / subject.gap) : 1;
    const needed = Math.max(1, Math.min(pace, this.recent(subject, this.lifeOf(subject.group)) + 1));
    return last.endsAt - now <= within || left < needed;
  }

  /** After a request spent a token: the next lease is asked now if this one will not last the journey. */
  private renewIfDue(subject: Subject, link: GuardLink): void {
    const group = subject.group;
    if (group.renewing || !this.due(subject, this.aheadOf(group)) || !this.soonEnough(subject, group, clock.now())) return;
    keep(link, this.renew(group));
  }

  /**
   * Whether a lease asked now would be live when the subject is next expected (its last
   * request and its usual gap): that is at most its lead away (leadOf), as when the
   * background step asks (nextRenewal). Near the guard always (a subject slower than a
   * lease life gets none there); far, one that calls every few seconds is renewed by that
   * step shortly before it is expected rather than now, for a lease that would end unspent.
   * `batch`: how much later it may be expected when a renewal goes anyway (for another
   * subject): one call then renews an account's slow subjects for the next half lease
   * life, so the guard sees a call per half life per isolate, not one per subject (one
   * expected near the end of it may need the next lease too, renewed with the next batch).
   */
  private soonEnough(subject: Subject, group: Group, now: number, batch = 0): boolean {
    if (!this.isFar(group) || subject.gap === undefined) return true;
    return subject.lastArrival + subject.gap - now <= this.leadOf(subject, group) + batch;
  }

  /**
   * How long before a far subject's expected request its renewal is asked: so that the
   * lease it brings ends (less one journey, when the next would be asked) LATE_MS after
   * the request is expected. A request up to that late still finds it; a later one finds
   * the next lease, asked only then (a renewal more). The lease is live from the lead
   * less one round trip before the request is expected (225 ms at a 150 ms round trip),
   * for one that comes early; earlier for a subject whose requests came early (twice as
   * early as they came, at most half a life and one journey ahead), whose late ones then
   * cost a renewal more instead of an early one a wait.
   */
  private leadOf(subject: Subject, group: Group): number {
    const life = this.lifeOf(group);
    const ahead = this.aheadOf(group);
    return Math.min(life - SAFETY_MARGIN_MS - ahead - LATE_MS + 2 * subject.early, life / 2 + ahead);
  }

  /**
   * One call renews every lease on this guard that is due within half a lease life, for
   * subjects still calling, and hands back what ended leases did not spend.
   */
  private renew(group: Group): Promise<void> {
    if (group.renewing) return group.renewing;
    const now = clock.now();
    const life = this.lifeOf(group);
    const within = this.aheadOf(group) + life / 2;
    const chosen: Subject[] = [];
    const requests: AdmitRequest[] = [];
    for (const subject of group.subjects) {
      this.retireEnded(subject);
      if (!this.active(subject, group, now)) {
        if (now - subject.lastArrival > MAX_IDLE_MS + life) group.subjects.delete(subject);
        continue;
      }
      const want = this.renewalWant(subject, group, life);
      if (want === 0 || !this.due(subject, within) || !this.soonEnough(subject, group, now, life / 2)) continue;
      subject.renewedAt = now;
      chosen.push(subject);
      requests.push({ ...subject.request, lease: { want, ttlMs: life }, pace: this.paceOf(subject) });
    }
    if (chosen.length === 0) return Promise.resolve();
    const returns = group.returns.splice(0);
    const link = group.link;
    const renewing = this.handsBack(group, returns, link.renew(requests, returns)).then(
      (decisions) => {
        this.timed(group, now);
        decisions.forEach((decision, i) => {
          if (decision.allow && decision.lease) this.hold(chosen[i]!, decision, now, 0, link);
          else if (!decision.allow && decision.refusal === "credential") chosen[i]!.refused = true;
          // None granted (a full window): not asked again for a lease life more.
          else chosen[i]!.renewedAt = now + life;
        });
      },
      // Handed back with the next call instead (a guard takes each lease's return once).
      () => void group.returns.push(...returns),
    );
    const waiting: Pending = { done: renewing, slots: Infinity };
    for (const subject of chosen) subject.pending.push(waiting);
    group.renewing = renewing.finally(() => {
      group.renewing = undefined;
      for (const subject of chosen) subject.pending.splice(subject.pending.indexOf(waiting), 1);
    });
    return group.renewing;
  }

  /** Spare tokens a renewal asks for the subject: none for one that called here only once (its rate unknown), unless the guard hinted its gap. */
  private renewalWant(subject: Subject, group: Group, life: number): number {
    // A share member is renewed with its share; a refused credential not at all.
    if (subject.gap === undefined || subject.share || subject.refused) return 0;
    // Nor a subject the guard's hint would renew before its second request here, when that
    // request would join its share (a busy guard here): a lease of its own would serve it
    // and keep it out of the share for good.
    if (subject.hinted && this.joinWanted(subject, subject.request)) return 0;
    return this.spareWanted(subject, group, life, false);
  }

  /** A subject still calling: within twice its usual gap of its last request (at most MAX_IDLE_MS), or within a lease life. */
  private active(subject: Subject, group: Group, now: number): boolean {
    const idle = subject.gap === undefined ? 0 : Math.min(MAX_IDLE_MS, IDLE_GAPS * subject.gap);
    return now - subject.lastArrival <= Math.max(idle, this.lifeOf(group));
  }

  /**
   * Far from the guard, a subject's lease is renewed between its requests too: this
   * request's background work (waitUntil) takes over the guard's renewal step, which wakes
   * one renewal journey before the next lease ends and stops once no subject on the guard
   * is still calling. Each request's step lives a few seconds at most (MAX_IDLE_MS and a
   * lease life), so none outlives what waitUntil allows.
   */
  private keepAlive(group: Group, link: GuardLink): void {
    if (!this.isFar(group)) return;
    const owner = {};
    group.stepOwner = owner;
    const step = async (): Promise<void> => {
      if (group.stepOwner !== owner) return;
      const next = this.isFar(group) ? this.nextRenewal(group) : undefined;
      if (next === undefined) {
        // Nothing left to keep alive: what ended leases did not spend goes back now.
        group.stepOwner = undefined;
        return this.handBack(group, group.link);
      }
      const wait = next - clock.now();
      if (wait > 0) return clock.after(wait, step);
      // One in flight (a request's): look again once it has had time to land, never waiting on it here.
      if (group.renewing) return clock.after(RENEW_MARGIN_MS, step);
      await this.renew(group);
      // Whatever the renewal found, the next step is at least a moment away (never a busy loop).
      return clock.after(Math.max(1, this.nextRenewal(group)! - clock.now() || 1), step);
    };
    keep(link, step());
  }

  /** When the next background renewal is due (undefined: no subject on this guard is still calling). */
  private nextRenewal(group: Group): number | undefined {
    const now = clock.now();
    const life = this.lifeOf(group);
    const ahead = this.aheadOf(group);
    let next: number | undefined;
    for (const subject of group.subjects) {
      if (!this.active(subject, group, now) || this.renewalWant(subject, group, life) === 0) continue;
      const ends = Math.max(now, ...subject.held.filter((h) => h.spent < h.tokens).map((h) => h.endsAt));
      // The next lease is asked one journey before this one is out, and not before its
      // lead on the subject's next request (expected at its last and its usual gap).
      const expected = subject.lastArrival + (subject.gap ?? 0);
      // Not sooner than a quarter life after the last ask: a refused renewal is not repeated at once.
      const at = Math.max(ends - ahead, expected - this.leadOf(subject, group), subject.renewedAt + life / 4);
      // Past the subject's idle horizon there is nothing to keep alive.
      if (at > subject.lastArrival + Math.min(MAX_IDLE_MS, IDLE_GAPS * (subject.gap ?? 0))) continue;
      next = next === undefined ? at : Math.min(next, at);
    }
    return next;
  }
  // ---------------------------------------------------------------- shares

  /**
   * A share's lease life: as long as a revoke's budget allows wherever the guard is (1 s
   * near it), since a share's renewal is what a busy account's guard sees per isolate.
   */
  private shareLife(group: Group): number {
    const budget = REVOKE_BUDGET_MS - REVOKE_ROUND_TRIPS * (group.rtt ?? 0);
    return Math.max(this.baseMs, Math.min(MAX_LEASE_MS, budget));
  }

  /**
   * Asking the guard: join (again) a share when the guard's subjects here are busy and
   * this one, which called here before (as for a lease), is not most of it.
   */
  private joinWanted(subject: Subject, request: AdmitRequest): boolean {
    if (!shareable(request) || subject.gap === undefined) return false;
    const life = this.shareLife(subject.group);
    const all = recentOf(subject.group.arrivals, life);
    // Its own requests a share life, at its usual pace (a burst's gaps are 0: all of it).
    const own = life / Math.max(1, subject.gap);
    if (all < SHARE_MIN || 2 * own >= all) return false;
    // And another subject called this guard within the life: one alone keeps its own leases.
    const now = clock.now();
    for (const other of subject.group.subjects) if (other !== subject && now - other.lastArrival <= life) return true;
    return false;
  }

  /** A vouched subject becomes (or stays) a member of its share. */
  private enrol(subject: Subject, vouched: Vouched, askedAt: number, link: GuardLink): void {
    const group = subject.group;
    let share = group.shares.get(vouched.share);
    if (!share) {
      share = {
        name: vouched.share,
        group,
        members: new Map(),
        held: [],
        arrivals: arrivals(askedAt),
        renewedAt: -Infinity,
        renewing: undefined,
        full: undefined,
      };
      group.shares.set(share.name, share);
    }
    if (subject.share && subject.share !== share) subject.share.members.delete(subject);
    subject.share = share;
    share.members.set(subject, { until: askedAt + vouched.ms - SAFETY_MARGIN_MS, vouched });
    this.renewShareIfDue(share, link);
  }

  /**
   * A member's admission from its share: a token; while the share's windows are full and
   * its tokens out, their refusal; else undefined (it asks the guard, as a subject does).
   * A request waits at most once, for a renewal under way.
   */
  private async fromShare(subject: Subject, link: GuardLink): Promise<AdmitDecision | undefined> {
    const share = subject.share;
    if (!share) return undefined;
    const member = share.members.get(subject);
    if (!member) {
      subject.share = undefined;
      return undefined;
    }
    // A member whose vouching ran out stays one (its next renewal vouches for it again), but spends nothing meanwhile.
    countArrival(share.arrivals, this.shareLife(share.group));
    let decision = this.spendShare(share, member) ?? this.shareRefusal(share, member);
    if (!decision && share.renewing) {
      await share.renewing;
      const still = share.members.get(subject);
      decision = still && (this.spendShare(share, still) ?? this.shareRefusal(share, still));
    }
    this.renewShareIfDue(share, link);
    return decision;
  }

  /** One admission from the subject's share, if it is a member vouched for and the share holds a token. */
  private spendOwnShare(subject: Subject): AdmitDecision | undefined {
    const member = subject.share?.members.get(subject);
    return member && this.spendShare(subject.share!, member);
  }

  /** One admission from the share's live lease, reporting the member's own facts. */
  private spendShare(share: Share, member: { until: number; vouched: Vouched }): AdmitDecision | undefined {
    this.retireEnded(share);
    const held = share.held[0];
    const now = clock.now();
    if (!held || now >= member.until) return undefined;
    const earlier = held.spent++;
    held.lastSpentAt = now;
    const { key, accountPlan } = member.vouched;
    return { allow: true, key, accountPlan, windows: spentWindows(held.decision.windows, earlier) };
  }

  /** The full windows' refusal, while it stands (until the share's next renewal, and while its member is vouched for). */
  private shareRefusal(share: Share, member: { until: number }): AdmitDecision | undefined {
    const full = share.full;
    const now = clock.now();
    if (!full || now >= full.until || now >= member.until) return undefined;
    return { ...full.decision, retryAfter: retryAfterSeconds(Math.max(full.until, full.retryAt), now) };
  }

  /**
   * Renews the guard's shares when this one's lease or its members' vouching ends within a
   * round trip and a margin, or its tokens will not last that long at its pace; never
   * sooner than half a life after its last renewal (the bounded rate per isolate), nor,
   * when its windows were full, before its refusal ends.
   */
  private renewShareIfDue(share: Share, link: GuardLink): void {
    const group = share.group;
    if (share.renewing || group.sharesRenewing) return;
    if (!this.shareDue(share, this.shareAhead(share))) return;
    keep(link, this.renewShares(group));
  }

  /**
   * How long before its lease or vouching ends a share is renewed: a round trip and a
   * margin, and two of its members' usual gaps, so some member's request comes in time to
   * ask (renewals are asked on requests).
   */
  private shareAhead(share: Share): number {
    const life = this.shareLife(share.group);
    return this.aheadOf(share.group) + (2 * life) / Math.max(1, recentOf(share.arrivals, life));
  }

  private shareDue(share: Share, within: number): boolean {
    const now = clock.now();
    const life = this.shareLife(share.group);
    if (now < share.renewedAt + life / 2 || now < (share.full?.until ?? 0) - this.shareAhead(share)) return false;
    this.retireEnded(share);
    const left = this.tokensLeft(share);
    const ends = Math.min(share.held.at(-1)?.endsAt ?? now, ...[...share.members.values()].map((m) => m.until));
    // Its pace: the members' requests in the last life, spread over it.
    const needed = Math.ceil((recentOf(share.arrivals, life) * within) / life) + 1;
    return ends - now <= within || left < needed;
  }

  /**
   * One call renews every share of this guard that is due within half a life: its members
   * still calling are vouched for again, its next lease is asked for (its members' requests
   * in the last life, a quarter more), and what ended leases did not spend goes back.
   */
  private renewShares(group: Group): Promise<void> {
    if (group.sharesRenewing) return group.sharesRenewing;
    const now = clock.now();
    const life = this.shareLife(group);
    const chosen: { share: Share; members: Subject[] }[] = [];
    const asks: ShareRenewal[] = [];
    for (const share of group.shares.values()) {
      // Members still calling: within twice their usual gap, at least two lives (at most MAX_IDLE_MS).
      for (const subject of share.members.keys()) {
        const idle = Math.min(MAX_IDLE_MS, Math.max(2 * life, IDLE_GAPS * (subject.gap ?? 0)));
        if (now - subject.lastArrival > idle) {
          share.members.delete(subject);
          if (subject.share === share) subject.share = undefined;
        }
      }
      if (share.members.size === 0) {
        this.retireEnded(share);
        group.shares.delete(share.name);
        continue;
      }
      if (!this.shareDue(share, this.shareAhead(share) + life / 2)) continue;
      const members = [...share.members.keys()];
      // Its members' pace over a life, less what its live lease still holds (spent first, while the next one is on its
      // way): a share holds about a life of tokens, not two. A guard's one share (the usual case) counts every
      // subject's pace, the ones about to join too.
      const recent = recentOf(group.shares.size === 1 ? group.arrivals : share.arrivals, life);
      const want = Math.min(MAX_LEASE_TOKENS, Math.max(1, Math.ceil(recent * RATE_MARGIN) + 1 - this.tokensLeft(share)));
      share.renewedAt = now;
      chosen.push({ share, members });
      asks.push({
        share: share.name,
        members: members.map((m) => ({ ...m.request, lease: undefined, join: undefined })),
        want,
        ttlMs: life,
      });
    }
    if (chosen.length === 0) return Promise.resolve();
    const returns = group.returns.splice(0);
    const link = group.link;
    const renewing = this.handsBack(group, returns, link.renewShares(asks, returns)).then(
      (answers) => {
        this.timed(group, now);
        answers.forEach((answer, i) => this.renewed(chosen[i]!.share, chosen[i]!.members, answer, now, link));
      },
      // Handed back with the next call instead (a guard takes each lease's return once).
      () => void group.returns.push(...returns),
    );
    const settled = renewing.finally(() => {
      group.sharesRenewing = undefined;
      for (const { share } of chosen) share.renewing = undefined;
    });
    group.sharesRenewing = settled;
    for (const { share } of chosen) share.renewing = settled;
    return settled;
  }

  /** A share's renewal answered: its members vouched for again (or out), its next lease held, or its windows' refusal. */
  private renewed(share: Share, members: Subject[], answer: ShareAnswer, askedAt: number, link: GuardLink): void {
    answer.members.forEach((vouched, i) => {
      const subject = members[i]!;
      if (vouched) {
        share.members.set(subject, { until: askedAt + vouched.ms - SAFETY_MARGIN_MS, vouched });
        return;
      }
      share.members.delete(subject);
      if (subject.share === share) subject.share = undefined;
    });
    const decision = answer.decision;
    share.full = undefined;
    if (decision?.allow && decision.lease) {
      const { id, tokens, ttlMs } = decision.lease;
      const endsAt = askedAt + ttlMs - SAFETY_MARGIN_MS;
      share.held.push({ id, tokens, spent: 0, askedAt, lastSpentAt: askedAt, endsAt, decision });
      keep(
        link,
        clock.after(Math.min(ttlMs, Math.max(0, endsAt - clock.now())) + 1, () => this.shareLeaseEnded(share, link)),
      );
      // It took the last of a window's room: once spent, its members are refused until the next renewal.
      if (decision.windows.some((w) => w.remaining + 1 - tokens <= 0)) {
        const windows = decision.windows.map((w) => ({ ...w, remaining: 0 }));
        const refusal: Refused = { allow: false, refusal: "rate_limited", message: "Rate limit exceeded", retryAfter: 1, windows };
        share.full = { until: endsAt, retryAt: endsAt, decision: refusal };
      }
    } else if (decision && !decision.allow && decision.refusal === "rate_limited") {
      this.shareFull(share, decision, askedAt);
    }
  }

  /** Tokens the share's live leases still hold (after retireEnded: every lease held is live). */
  private tokensLeft(share: Share): number {
    return share.held.reduce((sum, h) => sum + h.tokens - h.spent, 0);
  }

  /**
   * A member's own request found its windows full: so does every member's, and the share
   * refuses them here until its next renewal (or a share life from the ask, with no lease
   * held), as a refused renewal does: one guard call tells the isolate, not one per member.
   */
  private shareFull(share: Share, decision: Refused, askedAt: number): void {
    const until = Math.max(askedAt + this.shareLife(share.group) - SAFETY_MARGIN_MS, ...share.held.map((h) => h.endsAt));
    share.full = { until, retryAt: clock.now() + decision.retryAfter * 1000, decision };
  }

  /**
   * A share's lease ended: what it did not spend goes back with the share's next renewal
   * (it holds the next lease already), or now, in a call of its own, once nothing will
   * renew it (its members stopped calling).
   */
  private async shareLeaseEnded(share: Share, link: GuardLink): Promise<void> {
    this.retireEnded(share);
    const group = share.group;
    if (share.held.length > 0 || group.sharesRenewing || group.renewing || group.stepOwner !== undefined) return;
    await this.handBack(group, link);
  }
}

/** A lease's windows as the request that spends its token after `earlier` others sees them: counted one by one. */
function spentWindows(windows: WindowReport[], earlier: number): WindowReport[] {
  return windows.map((w) => ({
    name: w.name,
    limit: w.limit,
    windowSeconds: w.windowSeconds,
    remaining: Math.max(0, w.remaining - earlier),
    resetSeconds: w.resetSeconds,
  }));
}

/** Empty arrival buckets from `now`. */
function arrivals(now: number): Arrivals {
  return { start: now, current: 0, previous: 0 };
}

/** Counts an arrival now in buckets of `life`. */
function countArrival(a: Arrivals, life: number): void {
  const elapsed = clock.now() - a.start;
  if (elapsed >= 2 * life) {
    a.previous = 0;
    a.current = 0;
    a.start = clock.now();
  } else if (elapsed >= life) {
    a.previous = a.current;
    a.current = 0;
    a.start += life;
  }
  a.current++;
}

/** Arrivals in about the last `life`. */
function recentOf(a: Arrivals, life: number): number {
  const into = Math.min(1, Math.max(0, (clock.now() - a.start) / life));
  return Math.round(a.current + a.previous * (1 - into));
}

/**
 * Work kept alive by a request's waitUntil. Renewals may schedule work through the link
 * of a request that has already ended (the guard's latest): its work then runs unkept
 * rather than failing the renewal.
 */
function keep(link: GuardLink, work: Promise<unknown>): void {
  void work.catch(() => undefined);
  try {
    link.waitUntil(work);
  } catch {
    // the request has ended: nothing to keep it alive with
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
