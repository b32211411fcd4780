import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadSettings } from "../../src/config/settings";
import { useTestClock } from "../clock";
import { admin, bearer, burst, call, createKey, freshAccount, json, keyHeaders, newUser } from "../helpers";

/** How many keys a user or an account may hold at once (MAX_ACTIVE_KEYS_PER_USER / _PER_ACCOUNT). */
const KEYS = "/zakgt/api/v1/developer/api-keys";
const jsonHeaders = { "Content-Type": "application/json" };
const createOwn = (token: string, settings?: Record<string, unknown>) =>
  call(KEYS, { method: "POST", headers: { ...bearer(token), ...jsonHeaders }, body: "{}", settings });

describe("active key caps", () => {
  it("a ZakGT user holds at most 20 active keys, however many creations race: 409 in ZakGT's envelope", async () => {
    // 20 is the deployment's default; the test runtime raises it (test/node/workers-project.ts), so it is set back here.
    expect(loadSettings({ ...env, MAX_ACTIVE_KEYS_PER_USER: undefined }).MAX_ACTIVE_KEYS_PER_USER).toBe(20);
    const defaultCap = { MAX_ACTIVE_KEYS_PER_USER: "20" };
    const token = await (await newUser()).login();
    const responses = await burst(25, () => createOwn(token, defaultCap));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(20);
    const refused = responses.filter((r) => r.status === 409);
    expect(refused).toHaveLength(5);
    expect(await json(refused[0]!)).toEqual({
      detail: "This user already has 20 active keys, the most allowed; revoke one to create another",
    });

    // Revoking one makes room for one.
    const { id } = (await json(responses.find((r) => r.status === 201)!)).data;
    expect((await call(`${KEYS}/${id}`, { method: "DELETE", headers: bearer(token), settings: defaultCap })).status).toBe(200);
    expect((await createOwn(token, defaultCap)).status).toBe(201);
    expect((await createOwn(token, defaultCap)).status).toBe(409);
  });

  it("admin creation and import obey the account cap (409 in the admin envelope); expired keys do not count", async () => {
    const clock = useTestClock();
    const settings = { MAX_ACTIVE_KEYS_PER_ACCOUNT: "3" };
    const account = freshAccount();
    const create = (extra: Record<string, unknown> = {}) => admin("/keys", { json: { product: "zappway", account, ...extra }, settings });
    const first = await json(await create());
    expect((await create()).status).toBe(201);
    expect((await create({ expires_at: new Date(clock.now() + 1000).toISOString() })).status).toBe(201);
    const refused = await create();
    expect(refused.status).toBe(409);
    expect(await json(refused)).toEqual({
      error: { code: "CONFLICT", message: "This account already has 3 active keys, the most allowed; revoke one to create another" },
    });
    expect((await create({ import_key: `legacy-${crypto.randomUUID()}` })).status).toBe(409);
    // The same account name under another product is another account.
    expect((await admin("/keys", { json: { product: "zsky", account }, settings })).status).toBe(201);

    await clock.advance(1000);
    expect((await create()).status).toBe(201);
    expect((await admin(`/keys/${first.id}/revoke`, { method: "POST", settings })).status).toBe(200);
    expect((await create({ import_key: `legacy-${crypto.randomUUID()}` })).status).toBe(201);
  });

  it("admin-made ZakGT keys count against the user's cap; a ZSky rotation at the cap still works", async () => {
    const user = freshAccount("usr");
    const settings = { MAX_ACTIVE_KEYS_PER_USER: "2", MAX_ACTIVE_KEYS_PER_ACCOUNT: "2" };
    for (let i = 0; i < 2; i++) expect((await admin("/keys", { json: { product: "zakgt", account: user }, settings })).status).toBe(201);
    const refused = await admin("/keys", { json: { product: "zakgt", account: user }, settings });
    expect(refused.status).toBe(409);
    expect((await json(refused)).error.message).toMatch(/^This user already has 2 active keys/);

    // A rotation replaces a key: it adds none.
    const zsky = await createKey("zsky", { account: freshAccount() });
    const full = { MAX_ACTIVE_KEYS_PER_ACCOUNT: "1" };
    const rotated = await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", zsky.key), settings: full });
    expect(rotated.status).toBe(200);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", (await json(rotated)).key) })).status).toBe(200);
  });
});
