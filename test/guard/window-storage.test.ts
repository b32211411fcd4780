import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_SUBJECTS, SlidingLog } from "../../src/guard/sliding-log";
import { useTestClock } from "../clock";
import { call, createKey, freshAccount, keyHeaders, limitOverrides } from "../helpers";

/**
 * Sliding windows decide from the guard's memory and write their storage per cover, not
 * per admission (src/guard/sliding-log.ts): rows written are what a request costs.
 */
const guardOf = (name: string) => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(name));
const restart = (stub: DurableObjectStub) =>
  expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
/** No leases: every request is one guard decision, so the counts below are the guard's own. */
const unleased = (limit: number) => ({ ...limitOverrides({ zappway: { windows: { plan_rate: { limit } } } }), GUARD_LEASE_MS: "0" });

/** Counts the statements that write the `windows` table from now on, in one guard. */
async function countWindowWrites(name: string): Promise<() => number> {
  let writes = 0;
  await runInDurableObject(guardOf(name), (_object, state) => {
    // The object's one SQL handle, which the sliding log writes through.
    const sql = state.storage.sql;
    const exec = sql.exec.bind(sql);
    sql.exec = ((query: string, ...bindings: unknown[]) => {
      if (/INTO windows/.test(query)) writes++;
      return exec(query, ...(bindings as SqlStorageValue[]));
    }) as SqlStorage["exec"];
  });
  return () => writes;
}

describe("sliding window storage", () => {
  it("a busy subject writes its row once per cover, not once per admission", async () => {
    const { key, account } = await createKey("zappway");
    const settings = unleased(100_000);
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })).status).toBe(200);
    const writes = await countWindowWrites(`zappway:${account}`);
    for (let i = 0; i < 60; i++)
      expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })).status).toBe(200);
    // Covers grow with the subject's rate: 60 admissions take a handful of writes.
    expect(writes()).toBeGreaterThan(0);
    expect(writes()).toBeLessThanOrEqual(8);
  });

  it("a subject at a slow steady rate writes its minute window's row once per quarter of the window (15 s), not per admission", async () => {
    const clock = useTestClock();
    const { key, account } = await createKey("zappway");
    const settings = unleased(100_000);
    const send = async () =>
      expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })).status).toBe(200);
    await send();
    const writes = await countWindowWrites(`zappway:${account}`);
    // One request every 2 s for two minutes: 60 admissions on ZappWay's 60 s plan window.
    for (let i = 0; i < 60; i++) {
      await clock.advance(2_000);
      await send();
    }
    // A cover lasts W/4 = 15 s: 120 s take about 8 writes (W/8 took 16).
    expect(writes()).toBeGreaterThanOrEqual(7);
    expect(writes()).toBeLessThanOrEqual(9);
  });

  it("a restart never forgets an admission: at most the limit is admitted across it", async () => {
    const { key, account } = await createKey("zappway");
    const settings = unleased(10);
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    for (let i = 0; i < 6; i++) expect((await send()).status).toBe(200);
    await restart(guardOf(`zappway:${account}`));
    let after = 0;
    for (let i = 0; i < 10; i++) if ((await send()).status === 200) after++;
    // Exact on the safe side: a live cover's unspent tokens (at most half the room) stay counted.
    expect(6 + after).toBeLessThanOrEqual(10);
    expect(6 + after).toBeGreaterThanOrEqual(8);
  });

  it("a restart takes at most half of a window's remaining room: 15 of 20 used, 3 more are admitted", async () => {
    useTestClock(); // all 15 within one cover's time
    const { key, account } = await createKey("zappway");
    const settings = unleased(20);
    const send = () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings });
    for (let i = 0; i < 15; i++) expect((await send()).status).toBe(200);
    await restart(guardOf(`zappway:${account}`));
    let after = 0;
    for (let i = 0; i < 10; i++) if ((await send()).status === 200) after++;
    // The row counted 15 and a cover of floor((20 - 15) / 2) = 2 tokens stored ahead, none
    // spent yet: after the restart they count as admissions until they leave the window.
    expect(after).toBe(3);
  });

  it(`a guard keeps at most ${MAX_SUBJECTS} subjects in memory: one it forgot is read back from its row, its admissions still counted`, async () => {
    const stub = guardOf(`zappway:${freshAccount()}`);
    const counted = await runInDurableObject(stub, (_guard, state) => {
      const reads: string[] = [];
      const sql = state.storage.sql;
      const spied = {
        exec: (query: string, ...bindings: SqlStorageValue[]) => {
          if (query.startsWith("SELECT entries FROM windows")) reads.push(String(bindings[0]));
          return sql.exec(query, ...bindings);
        },
      } as SqlStorage;
      const log = new SlidingLog(spied);
      const now = Date.now();
      for (let i = 0; i <= MAX_SUBJECTS; i++) {
        log.inspect(`plan_rate:s${i}`, 10, 60_000, now);
        log.record(`plan_rate:s${i}`, 10, 60_000, now);
      }
      reads.length = 0;
      // The most recent ones are still in memory; the first was forgotten, and is read back.
      const recent = log.inspect(`plan_rate:s${MAX_SUBJECTS}`, 10, 60_000, now);
      const forgotten = log.inspect("plan_rate:s0", 10, 60_000, now);
      return { reads, recent: recent.used, forgotten: forgotten.used };
    });
    expect(counted.reads).toEqual(["plan_rate:s0"]);
    expect(counted.recent).toBe(1);
    // Read back as after a restart: its admission, and its cover's tokens stored ahead.
    expect(counted.forgotten).toBeGreaterThanOrEqual(1);
  });
});
