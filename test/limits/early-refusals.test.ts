import { describe, expect, it } from "vitest";
import { useTestClock, type TestClock } from "../clock";
import * as clock from "../../src/util/clock";
import { aroundGuards, call, createKey, keyHeaders, newUser } from "../helpers";

/**
 * No early 429 within one isolate (docs/limits.md, "An early 429"): a concurrent burst of
 * N + 10 on a window of N, all in one isolate, admits exactly N, even when the guard's
 * answers come late, as on a loaded machine (the burst of 310 on ZakGT's standard 300
 * admitted 251-262 there, and the next request was 200).
 *
 * On a test clock. The guard's admission answers reach the isolate only as the test moves
 * the clock, once every request has reached admission: one granting a lease at once, one
 * that decides a request alone LATE_MS after the guard gave it, longer than a lease then
 * lives (the isolate measures its guard that slow: 250 ms). So the requests a lease
 * promised tokens it did not bring go to the guard one by one and are decided after the
 * burst's last lease was granted, whose tokens land when every request is already at the
 * guard: they end unspent, and go back only after the guard has refused those requests
 * for a window they filled.
 */

const LATE_MS = 500;
const LIMIT = 300; // ZakGT's standard window: 300 a minute per key

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Guard stubs whose admission answers arrive on the test clock (a single decision LATE_MS late), and the test's side of that clock. */
function lateSingles() {
  let onTheWay = 0;
  // Anything the isolate did: a guard call asked or answered, a response complete.
  let activity = 0;
  const guards = aroundGuards(async (_name, method, ask) => {
    activity++;
    const answer = (await ask()) as { lease?: unknown };
    activity++;
    // Hand-backs and renewals go at once: a lease's end (work the clock runs) waits for them.
    if (method !== "admit") return answer;
    // Every admission's answer lands when the test moves the clock, never while requests still reach admission.
    const late = answer.lease ? 0 : LATE_MS;
    onTheWay++;
    return new Promise((resolve) => void clock.after(late, async () => (onTheWay--, resolve(answer))));
  });
  /**
   * Until every one of `sent` is answered: lets the isolate do all it can (its requests
   * hash their keys and reach admission on the runtime's own time, not the clock's), then
   * moves the clock LATE_MS on, bringing the answers on their way. So every request
   * reaches the guard, or its lease, before the first late answer arrives.
   */
  async function answered(test: TestClock, sent: Promise<Response>[]): Promise<Response[]> {
    let settled = false;
    const all = Promise.all(sent).finally(() => (settled = true));
    const noted = () => void activity++;
    for (const response of sent) void response.then(noted, noted);
    while (!settled) {
      for (let seen = -1, quiet = 0; quiet < 10 && !settled; quiet = seen === activity ? quiet + 1 : 0) {
        seen = activity;
        await tick();
      }
      if (!settled && onTheWay > 0) await test.advance(LATE_MS);
    }
    return all;
  }
  return { guards, answered };
}

describe("no early 429 within one isolate", () => {
  it(`a burst of ${LIMIT + 10} on a window of ${LIMIT} in one isolate, the guard's answers late: exactly ${LIMIT} admitted, and the window is full after it`, async () => {
    const test = useTestClock();
    // Twice, each a key of its own: how a burst's leases fall still depends a little on the
    // order its requests reach admission in (the runtime's, not the clock's).
    for (let round = 0; round < 2; round++) {
      const { key } = await createKey("zakgt", { account: (await newUser()).userId });
      const { guards, answered } = lateSingles();
      const settings = { ACCOUNT_GUARD: guards };
      const me = () => call("/zakgt/api/v1/users/me", { headers: keyHeaders("zakgt", key), settings });

      // The key's first request (decided alone, late: the isolate measures its guard as slow), then the rest at once.
      const [first] = await answered(test, [me()]);
      expect(first!.status).toBe(200);
      const responses = await answered(test, Array.from({ length: LIMIT + 9 }, me));
      const statuses = [first!, ...responses].map((r) => r.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(10);
      // Exactly the limit counted: no room was left idle for a later request to find.
      const [next] = await answered(test, [me()]);
      expect(next!.status).toBe(429);
    }
  });
});
