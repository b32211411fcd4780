/**
 * zgate's one clock. Every moment a limit, a lease, an expiry or a refusal depends on is
 * read here (`now`), in the isolate and in the guard alike, and every wait for one (a
 * mutation draining its leases, a lease's refund at its end) waits here (`sleep`,
 * `after`). Production reads Date.now() and waits with setTimeout, through one function
 * call and no allocation of its own.
 *
 * The one test seam is `useClock`: in tests the guard runs in the test's own isolate and
 * module graph, so one clock moved by the test (test/clock.ts) moves leases, drains,
 * standing refusals and expiries everywhere at once, without sleeping.
 */
export interface Clock {
  /** ms since the epoch. */
  now(): number;
  /** Resolves once `ms` have passed on this clock; its caller waits for it. */
  sleep(ms: number): Promise<void>;
  /**
   * Runs `work` once `ms` have passed on this clock. The promise is what a request's
   * waitUntil keeps alive for it (a moved clock runs the work itself, when it passes).
   */
  after(ms: number, work: () => Promise<void>): Promise<void>;
}

const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  after: (ms, work) => systemClock.sleep(ms).then(work),
};

let clock: Clock = systemClock;

export function now(): number {
  return clock.now();
}

export function sleep(ms: number): Promise<void> {
  return clock.sleep(ms);
}

export function after(ms: number, work: () => Promise<void>): Promise<void> {
  return clock.after(ms, work);
}

/** Replaces the clock for this whole isolate (null: back to the system clock). For tests only. */
export function useClock(replacement: Clock | null): void {
  clock = replacement ?? systemClock;
}
