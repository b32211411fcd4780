import { env, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { newAssertionKey } from "../src/forward/assertion-keys";
import { generateKey } from "../src/keys/key-format";
import { sha256Hex } from "../src/util/sha256";
import { useTestClock } from "./clock";
import { ADMIN_TOKEN, addressGuardOf, addressesByGuard, admin, burst, call, createKey, freshAccount, json } from "./helpers";

/**
 * Abuse that costs zgate more than it costs the caller: floods of made-up keys, rotating
 * through an IPv6 /64, guessing the admin token, hammering refresh.
 */
const jsonHeaders = { "Content-Type": "application/json" };
const byte = () => Math.floor(Math.random() * 256);
const hex16 = () => Math.floor(Math.random() * 0xffff).toString(16);
/** A fresh address of its own, so no other test shares its windows. */
const someV4 = () => `203.0.${byte()}.${byte()}`;

const usage = (key: string, address: string, settings?: Record<string, unknown>) =>
  call("/zsky/v1/usage", { headers: { "X-API-Key": key, "CF-Connecting-IP": address }, settings });
const loginFrom = (address: string) =>
  call("/zakgt/api/v1/auth/login", {
    method: "POST",
    headers: { ...jsonHeaders, "CF-Connecting-IP": address },
    body: '{"email":"demo@zakgt.test","password":"guess"}',
  });
const legacyKey = () => `legacy-${crypto.randomUUID()}`;

/** Bindings that count the key lookups reaching storage: KV reads of `key:<hash>`, D1 queries by key_hash. */
function countingStorage() {
  const seen = { kv: 0, d1: 0 };
  const kv = env.KEYS_KV;
  const settings = {
    KEYS_KV: {
      get: (name: string, type: "json") => {
        if (name.startsWith("key:")) seen.kv++;
        return kv.get(name, type);
      },
      put: kv.put.bind(kv),
      delete: kv.delete.bind(kv),
      list: kv.list.bind(kv),
    },
    DB: {
      prepare: (sql: string) => {
        if (/SELECT .* WHERE key_hash = \?/.test(sql)) seen.d1++;
        return env.DB.prepare(sql);
      },
      batch: env.DB.batch.bind(env.DB),
    },
  };
  return { seen, settings };
}

describe("unknown-key floods", () => {
  it("a made-up zgate key costs one storage lookup per isolate, not one per request", async () => {
    const { seen, settings } = countingStorage();
    const forged = generateKey("zsky_live_"); // the checksum is a public CRC32: forging one is free
    for (let i = 0; i < 5; i++) {
      const response = await usage(forged, someV4(), settings);
      expect(response.status).toBe(401);
      expect(await json(response)).toEqual({ error: "Invalid API key" });
    }
    expect(seen).toEqual({ kv: 1, d1: 1 });
  });

  it("after its first sighting, the same made-up key is refused with no guard call either", async () => {
    let guards = 0;
    const ACCOUNT_GUARD = new Proxy(env.ACCOUNT_GUARD, {
      get(target, prop, receiver) {
        if (prop === "get") guards++;
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const forged = generateKey("zsky_live_");
    const address = someV4();
    for (let i = 0; i < 5; i++) expect((await usage(forged, address, { ACCOUNT_GUARD })).status).toBe(401);
    // The first sighting is looked up and counted as a failure of its address; repeats read nothing.
    expect(guards).toBe(1);
  });

  it("failed key authentications are limited per client address: 429 with Retry-After, and past the limit a guess costs one KV read", async () => {
    const { seen, settings } = countingStorage();
    const address = someV4();
    const verified = await createKey("zsky");
    expect((await usage(verified.key, address, settings)).status).toBe(200);

    for (let i = 0; i < 10; i++) expect((await usage(legacyKey(), address, settings)).status).toBe(401);
    const lookups = { ...seen };
    const guesses = [legacyKey(), generateKey("zsky_live_")];
    for (const key of guesses) {
      const refused = await usage(key, address, settings);
      expect(refused.status).toBe(429);
      expect(await json(refused)).toEqual({ error: "Too many failed authentication attempts, retry later" });
      expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(50);
      expect(Number(refused.headers.get("Retry-After"))).toBeLessThanOrEqual(60);
    }
    // Never a D1 query past the limit.
    expect(seen).toEqual({ kv: lookups.kv + guesses.length, d1: lookups.d1 });

    // Successes are never counted: the key this address already uses keeps working.
    expect((await usage(verified.key, address, settings)).status).toBe(200);
    // Each product's own envelope, and another address is not affected.
    const zappway = await call("/zappway/api/v1/agents", {
      headers: { Authorization: `Bearer ${legacyKey()}`, "CF-Connecting-IP": someV4() },
    });
    expect(zappway.status).toBe(401);
    expect((await usage(legacyKey(), someV4())).status).toBe(401);
  });

  it("a valid key is never refused for other callers' failures at its address: admitted on its first use there, while guesses stay 429", async () => {
    let guardCalls = 0;
    const { seen, settings } = countingStorage();
    const counted = {
      ...settings,
      ACCOUNT_GUARD: new Proxy(env.ACCOUNT_GUARD, {
        get(target, prop, receiver) {
          if (prop === "get") guardCalls++;
          const value = Reflect.get(target, prop, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }),
    };
    // An office behind one address: someone's script fails 12 times.
    const office = someV4();
    for (let i = 0; i < 12; i++) expect((await usage(generateKey("zsky_live_"), office, counted)).status).toBe(i < 10 ? 401 : 429);

    // A colleague's keys of other accounts, used for the first time anywhere, from the same address.
    const zsky = await createKey("zsky");
    const first = await usage(zsky.key, office, counted);
    expect(first.status).toBe(200);
    const zappway = await createKey("zappway");
    const agents = await call("/zappway/api/v1/agents", {
      headers: { Authorization: `Bearer ${zappway.key}`, "CF-Connecting-IP": office },
      settings: counted,
    });
    expect(agents.status).toBe(200);

    // The flood goes on being refused, each new guess for one KV read: no D1 query, no guard call.
    const before = { ...seen, guardCalls };
    for (const key of [generateKey("zsky_live_"), legacyKey(), generateKey("zsky_live_")]) {
      const refused = await usage(key, office, counted);
      expect(refused.status).toBe(429);
      expect(await json(refused)).toEqual({ error: "Too many failed authentication attempts, retry later" });
    }
    expect({ ...seen, guardCalls }).toEqual({ kv: before.kv + 3, d1: before.d1, guardCalls: before.guardCalls });
  });

  it("the limit is exact under concurrency, and counted per product in the product's envelope", async () => {
    const address = someV4();
    const responses = await burst(15, () =>
      call("/zappway/api/v1/agents", { headers: { Authorization: `Bearer ${legacyKey()}`, "CF-Connecting-IP": address } }),
    );
    expect(responses.filter((r) => r.status === 401)).toHaveLength(10);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(5);
    expect(await json(refused[0]!)).toEqual({
      error: { code: "RATE_LIMITED", message: "Too many failed authentication attempts, retry later" },
    });
    expect((await usage(legacyKey(), address)).status).toBe(401);
  });

  it("a key imported after it was refused as unknown works at once", async () => {
    const legacy = legacyKey();
    expect((await usage(legacy, someV4())).status).toBe(401);
    expect((await admin("/keys", { json: { product: "zsky", account: freshAccount(), import_key: legacy } })).status).toBe(201);
    expect((await usage(legacy, someV4())).status).toBe(200);

    // A zgate-shaped key moved in by its SHA-256 (from another zgate deployment): this isolate had it as unknown.
    const moved = generateKey("zsky_live_");
    expect((await usage(moved, someV4())).status).toBe(401);
    expect(
      (await admin("/keys", { json: { product: "zsky", account: freshAccount(), import_sha256: await sha256Hex(moved) } })).status,
    ).toBe(201);
    expect((await usage(moved, someV4())).status).toBe(200);
  });

  it("a flood of made-up keys from ever new addresses starts no guard object per address, and each address keeps an exact window of its own", async () => {
    // Eight addresses the deployment counts in two guards (its keyed hash picks them; a
    // caller could not), each failing once with a made-up key.
    const byGuard = await addressesByGuard("zsky", 600);
    const [first, second] = [...byGuard.values()].filter((group) => group.length >= 4);
    const addresses = [...first!.slice(0, 4), ...second!.slice(0, 4)];
    const before = (await listDurableObjectIds(env.ACCOUNT_GUARD)).length;
    for (const address of addresses) expect((await usage(generateKey("zsky_live_"), address)).status).toBe(401);
    expect((await listDurableObjectIds(env.ACCOUNT_GUARD)).length - before).toBeLessThanOrEqual(2);

    // Two of them counted in one guard: one fills its window, the other's is untouched.
    const [full, other] = first!;
    for (let i = 1; i < 10; i++) expect((await usage(legacyKey(), full!)).status).toBe(401);
    expect((await usage(legacyKey(), full!)).status).toBe(429);
    expect((await usage(legacyKey(), other!)).status).toBe(401);
  });

  it("which guard counts an address is a keyed hash: under other ORIGIN_ASSERTION_KEYS the same address is counted in another guard", async () => {
    // The same kids, other keys: another deployment.
    const kids = Object.keys(JSON.parse(env.ORIGIN_ASSERTION_KEYS as string) as Record<string, string>);
    const other = { ORIGIN_ASSERTION_KEYS: JSON.stringify(Object.fromEntries(kids.map((kid) => [kid, newAssertionKey()]))) };
    let address = someV4();
    for (
      let tries = 0;
      (await addressGuardOf("zsky", address)) === (await addressGuardOf("zsky", address, other.ORIGIN_ASSERTION_KEYS));
      tries++
    ) {
      expect(tries).toBeLessThan(50);
      address = someV4();
    }
    const rowsIn = async (name: string) =>
      runInDurableObject(
        env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(name)),
        (_guard, state) => state.storage.sql.exec("SELECT 1 FROM windows WHERE subject = ?", `auth_failures:${address}`).toArray().length,
      );
    expect((await usage(legacyKey(), address, other)).status).toBe(401);
    expect(await rowsIn(await addressGuardOf("zsky", address, other.ORIGIN_ASSERTION_KEYS))).toBe(1);
    expect(await rowsIn(await addressGuardOf("zsky", address))).toBe(0);
  });

  it("a failure without a client address is answered 401 and counted in no bucket", async () => {
    for (let i = 0; i < 12; i++) expect((await usage(legacyKey(), "")).status).toBe(401);
  });
});

describe("per-address windows", () => {
  it("IPv6 clients are counted per /64, whatever form the address takes", async () => {
    const net = `2001:db8:${hex16()}:${hex16()}`;
    const forms = (i: number) => [
      `${net}::${i.toString(16)}`,
      `${net}:${i.toString(16)}:0:0:1`,
      `${net}:0:0:0:${i}`.toUpperCase(),
      `${net}::ffff:10.0.0.${i}`,
    ];
    const statuses: number[] = [];
    for (let i = 1; i <= 22; i++) statuses.push((await loginFrom(forms(i)[i % 4]!)).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true); // reached the origin: wrong password
    expect(statuses.slice(20)).toEqual([429, 429]);
    expect((await loginFrom(`2001:db8:${hex16()}:${hex16()}::1`)).status).toBe(401);
  });

  it("an IPv4-mapped IPv6 address is the IPv4 address", async () => {
    const v4 = someV4();
    for (let i = 0; i < 20; i++) expect((await loginFrom(v4)).status).toBe(401);
    const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number];
    expect((await loginFrom(`::ffff:${v4}`)).status).toBe(429);
    expect((await loginFrom(`::FFFF:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`)).status).toBe(429);
  });

  it("a request without a client address is refused, not put in a bucket shared by all such requests", async () => {
    for (const address of ["", "not-an-address", "1.2.3.256", "2001:db8::1::2"]) {
      const response = await loginFrom(address);
      expect(response.status, address).toBe(400);
      expect(await json(response)).toEqual({ detail: "Client address unknown" });
    }
  });

  it("refresh has a per-address window of its own", async () => {
    // The clock stands still: the burst's refusals come a whole window before its end, however long the burst takes.
    useTestClock();
    const address = someV4();
    const refresh = () =>
      call("/zakgt/api/v1/auth/refresh", {
        method: "POST",
        headers: { ...jsonHeaders, "CF-Connecting-IP": address },
        body: '{"refresh_token":"stolen"}',
      });
    const responses = await burst(62, refresh);
    expect(responses.filter((r) => r.status === 401)).toHaveLength(60);
    const refused = responses.filter((r) => r.status === 429);
    expect(refused).toHaveLength(2);
    expect(await json(refused[0]!)).toEqual({ detail: "Rate limit exceeded" });
    expect(refused[0]!.headers.get("RateLimit-Policy")).toBe('"auth_refresh_ip";q=60;w=60');
    expect(refused[0]!.headers.get("Retry-After")).toBe("60");
    // Logins from that address are not used up by refreshes.
    expect((await loginFrom(address)).status).toBe(401);
  });

  it("an address's row is deleted once its windows have passed, while its guard goes on counting other addresses", async () => {
    const clock = useTestClock();
    const t0 = clock.now();
    const gone = someV4();
    const shard = await addressGuardOf("zakgt", gone);
    let staying = someV4();
    while ((await addressGuardOf("zakgt", staying)) !== shard || staying === gone) staying = someV4();
    const stub = env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(shard));
    const stored = () =>
      runInDurableObject(stub, async (_guard, state) => ({
        subjects: state.storage.sql
          .exec<{ subject: string }>("SELECT subject FROM windows")
          .toArray()
          .map((r) => r.subject)
          .filter((subject) => subject.endsWith(`:${gone}`) || subject.endsWith(`:${staying}`)),
        alarm: await state.storage.getAlarm(),
      }));
    expect((await loginFrom(gone)).status).toBe(401);
    expect(await stored()).toEqual({ subjects: [`auth_ip:${gone}`], alarm: expect.any(Number) });

    // Within its window the alarm keeps the row, and comes back later.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stored()).subjects).toEqual([`auth_ip:${gone}`]);
    // Past it (its row counts ahead by at most one cover, 15 s of a 60 s window), another
    // address of the same guard calls: the alarm deletes the row that passed, keeps the other.
    await clock.advanceTo(t0 + 80_000);
    expect((await loginFrom(staying)).status).toBe(401);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stored()).toEqual({ subjects: [`auth_ip:${staying}`], alarm: expect.any(Number) });
    // Once every window has passed, nothing is left and no alarm is set.
    await clock.advanceTo(t0 + 200_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stored()).toEqual({ subjects: [], alarm: null });

    // The address calling again starts from an empty window.
    const again = await loginFrom(gone);
    expect(again.status).toBe(401);
    expect(again.headers.get("RateLimit")).toBe('"auth_ip";r=19;t=60');
  });
});

describe("admin API", () => {
  const asAdmin = (token: string, address: string) =>
    call("/admin/v1/audit?limit=1", { headers: { Authorization: `Bearer ${token}`, "CF-Connecting-IP": address } });

  it("failed admin authentications are limited per address: past the limit the right token is refused too, from that address only", async () => {
    const address = someV4();
    for (let i = 0; i < 10; i++) expect((await asAdmin(`wrong-token-${i}-0123456789abcdef`, address)).status).toBe(401);
    const refused = await asAdmin("wrong-token-x-0123456789abcdef", address);
    expect(refused.status).toBe(429);
    expect(await json(refused)).toEqual({
      error: { code: "RATE_LIMITED", message: "Too many failed authentication attempts, retry later" },
    });
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(290);
    expect((await asAdmin(ADMIN_TOKEN, address)).status).toBe(429);
    expect((await asAdmin(ADMIN_TOKEN, someV4())).status).toBe(200);
    expect((await asAdmin("wrong-token-y-0123456789abcdef", someV4())).status).toBe(401);
  });
});
