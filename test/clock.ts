import { expect, onTestFinished } from "vitest";
import { useClock, type Clock } from "../src/util/clock";

/**
 * A clock the test moves (src/util/clock.ts's one seam). The guard runs in the test's
 * own isolate and module graph, so this one clock is the guard's and the isolate's: a
 * lease, a drain, a standing refusal, a window and a key's expiry all end when the test
 * moves it there, never by sleeping. It stands still otherwise.
 *
 * What waits on it: a drain (`sleep`: its caller, a mutation, returns once the clock
 * reaches the drain's end) and a lease's refund at its end (`after`: run by the clock
 * itself when it passes, so a request whose lease is still live does not hold `call`
 * up). At the end of the test, whatever still waits is run out in order and the system
 * clock is back.
 */
export interface TestClock {
  now(): number;
  /** Moves the clock `ms` forward: every wait that ends meanwhile ends, in order (refunds are waited for). */
  advance(ms: number): Promise<void>;
  /** Moves the clock to `at` (never back). */
  advanceTo(at: number): Promise<void>;
  /** Resolves with its end once the next sleep begins (a mutation waiting for leases): ask before starting it. */
  nextSleep(): Promise<number>;
  /** Resolves with its time once the next work is scheduled on the clock (`after`): ask before starting what schedules it. */
  nextWork(): Promise<number>;
  /** Moves the clock to the end of the earliest sleep (running what is due by then), and no further. */
  wake(): Promise<void>;
}

/** Work to run once the clock passes `at`. */
interface Timer {
  at: number;
  seq: number;
  work: () => Promise<void>;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

class ManualClock implements Clock, TestClock {
  private at: number;
  private seq = 0;
  private readonly timers: Timer[] = [];
  /** When each pending sleep ends. */
  private readonly sleeps: number[] = [];
  private sleepsBegun = 0;
  private lastSleepEnd = 0;
  private worksScheduled = 0;
  private ended = false;

  constructor(start: number) {
    this.at = start;
  }

  now(): number {
    return this.at;
  }

  async sleep(ms: number): Promise<void> {
    const end = this.at + Math.max(0, ms);
    this.lastSleepEnd = end;
    this.sleepsBegun++;
    this.sleeps.push(end);
    // The sleeper watches the clock from its own side (a guard's I/O context): a promise
    // the test resolved would resume the guard inside the test's context, and the other
    // way round, which workerd refuses.
    while (this.at < end && !this.ended) await tick();
    this.sleeps.splice(this.sleeps.indexOf(end), 1);
  }

  after(ms: number, work: () => Promise<void>): Promise<void> {
    this.timers.push({ at: this.at + Math.max(0, ms), seq: this.seq++, work });
    this.worksScheduled++;
    return Promise.resolve();
  }

  async nextSleep(): Promise<number> {
    const seen = this.sleepsBegun;
    // Watched from the test's side, for the same reason.
    while (this.sleepsBegun === seen && !this.ended) await tick();
    return this.lastSleepEnd;
  }

  async nextWork(): Promise<number> {
    const seen = this.worksScheduled;
    while (this.worksScheduled === seen && !this.ended) await tick();
    return this.timers[this.timers.length - 1]!.at;
  }

  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.at + ms);
  }

  async advanceTo(at: number): Promise<void> {
    if (at < this.at) throw new Error(`the test clock does not go back (${at} < ${this.at})`);
    for (let timer = this.due(at); timer; timer = this.due(at)) await this.run(timer);
    // Work run on the way may have moved it further itself (a guard answer in transit).
    this.at = Math.max(this.at, at);
  }

  async wake(): Promise<void> {
    if (this.sleeps.length === 0) throw new Error("nothing sleeps on the test clock");
    await this.advanceTo(Math.min(...this.sleeps));
  }

  /** Runs out every wait left (the end of a test), then hands time back to the system clock. */
  async runOut(): Promise<void> {
    this.ended = true;
    for (let timer = this.due(Infinity); timer; timer = this.due(Infinity)) await this.run(timer);
    useClock(null);
  }

  /** The earliest wait that ends by `at`, taken off the list. */
  private due(at: number): Timer | undefined {
    let first: Timer | undefined;
    for (const t of this.timers) if (t.at <= at && (!first || t.at < first.at || (t.at === first.at && t.seq < first.seq))) first = t;
    if (first) this.timers.splice(this.timers.indexOf(first), 1);
    return first;
  }

  private async run(timer: Timer): Promise<void> {
    this.at = Math.max(this.at, timer.at);
    await timer.work();
  }
}

let current: ManualClock | undefined;

/**
 * Replaces the clock for this test (from `start`, ms since the epoch; now by default)
 * and gives it back at the test's end. Start at or after the real time: a guard's alarm
 * set for a moment the real clock has passed would fire by itself.
 */
export function useTestClock(start = Date.now()): TestClock {
  const clock = new ManualClock(start);
  current = clock;
  useClock(clock);
  onTestFinished(() => runOutTestClock());
  return clock;
}

/** Ends the test clock, if one is in use: what still waits on it is run out first (test/helpers.ts callLive). */
export async function runOutTestClock(): Promise<void> {
  const clock = current;
  current = undefined;
  await clock?.runOut();
}

/**
 * Starts `change` (a mutation while a lease or a standing refusal is live), which must
 * wait for it on the clock: seen waiting (without its drain it would return at once), it
 * returns once the clock reaches the end of that wait, and the clock goes no further.
 */
export async function afterDrain<T>(clock: TestClock, change: () => Promise<T>): Promise<T> {
  const sleeping = clock.nextSleep();
  const changed = change();
  expect(await Promise.race([changed.then(() => "returned"), sleeping.then(() => "waiting")])).toBe("waiting");
  await clock.wake();
  return changed;
}
