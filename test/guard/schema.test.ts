import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADDRESS_GUARD_MIGRATIONS, GUARD_MIGRATIONS, migrate, type Migration } from "../../src/guard/schema";
import { useTestClock } from "../clock";
import { addressGuardOf, admin, call, createKey, json, keyHeaders, someIp } from "../helpers";

/**
 * Guard objects live forever and open their storage with whatever code runs now: each
 * brings its own SQLite schema up to date (src/guard/schema.ts).
 */
const guardOf = (name: string) => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(name));
/**
 * Leases off: every call is counted by the guard itself, so the counts after a restart are
 * the stored window's alone, whatever leases the isolate held (in a full npm test, under
 * load, the third of 3 was once refused after the restart).
 */
const agents = (key: string) => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: { GUARD_LEASE_MS: "0" } });
const versionOf = (storage: DurableObjectStorage) =>
  storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0]?.version;
const countOf = (storage: DurableObjectStorage, table: string) =>
  storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
/** Drops the object's in-memory state, as a deploy or eviction does; its storage stays. */
const restart = (stub: DurableObjectStub) =>
  expect(runInDurableObject(stub, (_guard, state) => state.abort("restart"))).rejects.toThrow("restart");
/** A failed ZakGT login from the address: it writes the address's `auth_ip` window in its address guard. */
const failedLogin = (address: string) =>
  call("/zakgt/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": address },
    body: '{"email":"demo@zakgt.test","password":"guess"}',
  });
/** The object's own tables (SQLite's and the runtime's left out). */
const tablesOf = (state: DurableObjectState) =>
  state.storage.sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
    .toArray()
    .map((t) => t.name)
    .sort();

describe("guard storage schema", () => {
  it("a new guard's storage is at the latest version", async () => {
    const { key, account } = await createKey("zappway");
    expect((await agents(key)).status).toBe(200);
    expect(await runInDurableObject(guardOf(`zappway:${account}`), (_guard, state) => versionOf(state.storage))).toBe(
      GUARD_MIGRATIONS.length,
    );
  });

  it("a step appended later runs over an existing guard's storage once, on its next open, and the guard keeps its rows and keeps working", async () => {
    const { key, account } = await createKey("zappway", { limit_override: { windows: { plan_rate: { limit: 3, window_seconds: 3600 } } } });
    const revoked = await createKey("zappway", { account });
    expect((await admin(`/keys/${revoked.id}/revoke`, { method: "POST" })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await agents(key)).status).toBe(200);
    const stub = guardOf(`zappway:${account}`);
    // A later release's step: a column more on every key (what a real step would add).
    const later: Migration = (sql) => sql.exec("ALTER TABLE keys ADD COLUMN note TEXT");
    const upgraded = await runInDurableObject(stub, (_guard, state) => {
      const before = { version: versionOf(state.storage), keys: countOf(state.storage, "keys") };
      const first = migrate(state.storage, [...GUARD_MIGRATIONS, later]);
      const again = migrate(state.storage, [...GUARD_MIGRATIONS, later]);
      const columns = state.storage.sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('keys')")
        .toArray()
        .map((c) => c.name);
      return { before, first, again, keys: countOf(state.storage, "keys"), note: columns.includes("note") };
    });
    expect(upgraded).toEqual({
      before: { version: GUARD_MIGRATIONS.length, keys: 2 },
      first: GUARD_MIGRATIONS.length + 1,
      again: GUARD_MIGRATIONS.length + 1,
      keys: 2,
      note: true,
    });
    await restart(stub);

    // The revoked key stays revoked, the window keeps its two admissions.
    expect((await agents(revoked.key)).status).toBe(401);
    expect((await agents(key)).status).toBe(200);
    expect((await agents(key)).status).toBe(429);
    // A stub that saw its object abort stays broken: a new one reaches the restarted object.
    expect(await runInDurableObject(guardOf(`zappway:${account}`), (_guard, state) => versionOf(state.storage))).toBe(
      GUARD_MIGRATIONS.length + 1,
    );
  });

  it("a new step applies once, in one transaction; a failed step leaves the version before it", async () => {
    const { key, account } = await createKey("zappway");
    expect((await agents(key)).status).toBe(200);
    const stub = guardOf(`zappway:${account}`);
    const latest = GUARD_MIGRATIONS.length;
    const next: Migration = (sql) => sql.exec("CREATE TABLE probe (n INTEGER); INSERT INTO probe (n) VALUES (1)");
    const failing: Migration = (sql) => {
      sql.exec("CREATE TABLE half_done (n INTEGER)");
      throw new Error("step failed");
    };
    const outcome = await runInDurableObject(stub, (_guard, state) => {
      const first = migrate(state.storage, [...GUARD_MIGRATIONS, next]);
      const second = migrate(state.storage, [...GUARD_MIGRATIONS, next]);
      expect(() => migrate(state.storage, [...GUARD_MIGRATIONS, next, failing])).toThrow("step failed");
      return {
        first,
        second,
        probes: countOf(state.storage, "probe"),
        version: versionOf(state.storage),
        halfDone: state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").toArray().length,
      };
    });
    expect(outcome).toEqual({ first: latest + 1, second: latest + 1, probes: 1, version: latest + 1, halfDone: 0 });

    // Code that knows fewer steps (a rollback) leaves the newer storage as it is and still works.
    await restart(stub);
    expect((await agents(key)).status).toBe(200);
    expect(await runInDurableObject(guardOf(`zappway:${account}`), (_guard, state) => versionOf(state.storage))).toBe(latest + 1);
  });

  it("an account guard's window rows have no expiry index (a row written more per window write); an address guard's, whose alarm deletes by it, do", async () => {
    const { key, account } = await createKey("zappway");
    expect((await agents(key)).status).toBe(200);
    const address = someIp();
    const login = await failedLogin(address);
    expect(login.status).toBe(401);
    // An address guard is shared by every address of its shard (other tests' too): count this address's rows.
    const indexes = (stub: DurableObjectStub, only = "%") =>
      runInDurableObject(stub, (_guard, state) => ({
        windows: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM windows WHERE subject LIKE ?", only).one().n,
        indexes: state.storage.sql
          .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'windows' AND sql IS NOT NULL")
          .toArray()
          .map((i) => i.name),
      }));
    expect(await indexes(guardOf(`zappway:${account}`))).toEqual({ windows: 1, indexes: [] });
    expect(await indexes(guardOf(await addressGuardOf("zakgt", address)), `%:${address}`)).toEqual({
      windows: 1,
      indexes: ["windows_by_expiry"],
    });
  });

  it("an address guard has a schema of its own at its latest version, which its alarm keeps", async () => {
    const clock = useTestClock();
    const address = someIp();
    expect((await failedLogin(address)).status).toBe(401);
    const stub = guardOf(await addressGuardOf("zakgt", address));
    expect(await runInDurableObject(stub, (_guard, state) => versionOf(state.storage))).toBe(ADDRESS_GUARD_MIGRATIONS.length);
    // Its own schema: windows and the lease horizon, nothing an account keeps.
    const tables = () => runInDurableObject(stub, (_guard, state) => tablesOf(state));
    expect(await tables()).toEqual(["lease_horizon", "schema_version", "windows"]);

    // Its alarm, once the window has passed, deletes the address's row and keeps the schema.
    await clock.advance(3_600_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await tables()).toEqual(["lease_horizon", "schema_version", "windows"]);
    const again = await failedLogin(address);
    expect(again.status).toBe(401);
    expect(again.headers.get("RateLimit")).toBe('"auth_ip";r=19;t=60');
  });

  it("an address guard restarted and woken without its name keeps its own schema and deletes an address's row once its windows pass", async () => {
    const clock = useTestClock();
    const address = someIp();
    const login = await failedLogin(address);
    expect(login.status).toBe(401);
    const id = env.ACCOUNT_GUARD.idFromName(await addressGuardOf("zakgt", address));
    await restart(env.ACCOUNT_GUARD.get(id));
    // Reached by its id alone, as its alarm reaches it after a restart: the object has no name.
    const nameless = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromString(id.toString()));
    expect(await runInDurableObject(nameless, (_guard, state) => ({ name: state.id.name, tables: tablesOf(state) }))).toEqual({
      name: undefined,
      tables: ["lease_horizon", "schema_version", "windows"],
    });
    const rowOf = (state: DurableObjectState) =>
      state.storage.sql.exec("SELECT subject FROM windows WHERE subject = ?", `auth_ip:${address}`).toArray().length;
    // Its window has not passed: the alarm keeps the row and comes back later.
    expect(await runDurableObjectAlarm(nameless)).toBe(true);
    expect(await runInDurableObject(nameless, (_guard, state) => ({ tables: tablesOf(state), row: rowOf(state) }))).toEqual({
      tables: ["lease_horizon", "schema_version", "windows"],
      row: 1,
    });

    await clock.advance(3_600_000);
    expect(await runDurableObjectAlarm(nameless)).toBe(true);
    expect(await runInDurableObject(nameless, (_guard, state) => ({ tables: tablesOf(state), row: rowOf(state) }))).toEqual({
      tables: ["lease_horizon", "schema_version", "windows"],
      row: 0,
    });
  });
});
