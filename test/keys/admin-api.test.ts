import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { useTestClock } from "../clock";
import { ADMIN_TOKEN, admin, call, createKey, freshAccount, json, keyHeaders, mintToken, newUser, sims } from "../helpers";
import { generateKey } from "../../src/keys/key-format";

describe("admin API authentication", () => {
  it("401 without the admin token or with a wrong one, in the gateway envelope", async () => {
    for (const headers of [
      {} as Record<string, string>,
      { Authorization: "Bearer wrong-token" },
      { Authorization: `Basic ${ADMIN_TOKEN}` },
      { Authorization: `Bearer ${ADMIN_TOKEN}x` },
    ]) {
      const response = await call("/admin/v1/keys", { headers });
      expect(response.status).toBe(401);
      expect(await json(response)).toEqual({ error: { code: "UNAUTHORIZED", message: "Invalid admin credentials" } });
    }
  });

  it("answers with the token, the Bearer scheme in any case", async () => {
    // Filtered to an account of its own: files share a runtime's storage, and another file's
    // keys (one of a product a test registered for a while, say) are not this test's to read.
    const response = await call(`/admin/v1/keys?account=${freshAccount()}`, { headers: { Authorization: `bearer ${ADMIN_TOKEN}` } });
    expect(response.status).toBe(200);
  });

  it("503 when neither ADMIN_TOKEN nor Access is configured", async () => {
    const response = await admin("/keys", { settings: { ADMIN_TOKEN: undefined } });
    expect(response.status).toBe(503);
    expect((await json(response)).error.code).toBe("SERVICE_UNAVAILABLE");
  });

  it("uses the gateway envelope, for unknown admin paths too", async () => {
    const response = await call("/admin/v1/keys");
    expect(await json(response)).toEqual({ error: { code: "UNAUTHORIZED", message: "Invalid admin credentials" } });
    const unknown = await admin("/nope");
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ error: { code: "NOT_FOUND", message: "Not Found" } });
  });

  it("accepts a Cloudflare Access JWT when Access is configured, and audits its identity", async () => {
    const access = {
      ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com",
      ACCESS_AUD: "aud-tag-123",
      ACCESS_JWKS_URL: sims.jwksUrl, // the simulator's key set stands in for Access's certs
    };
    const good = await mintToken({ iss: "https://zgate-sec.cloudflareaccess.com", aud: "aud-tag-123", email: "sec@zakgt.test" });
    const account = freshAccount();
    const created = await call("/admin/v1/keys", {
      method: "POST",
      headers: { "Cf-Access-Jwt-Assertion": good, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zsky", account }),
      settings: access,
    });
    expect(created.status).toBe(201);
    const audit = await json(await admin(`/audit?target=${(await json(created)).id}`));
    expect(audit.entries[0].actor).toBe("admin:sec@zakgt.test");

    const wrongAud = await mintToken({ iss: "https://zgate-sec.cloudflareaccess.com", aud: "other", email: "x@y.z" });
    const refused = await call("/admin/v1/keys", { headers: { "Cf-Access-Jwt-Assertion": wrongAud }, settings: access });
    expect(refused.status).toBe(401);
    const forged = await new SignJWT({ email: "x@y.z" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://zgate-sec.cloudflareaccess.com")
      .setAudience("aud-tag-123")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("k".repeat(32)));
    expect((await call("/admin/v1/keys", { headers: { "Cf-Access-Jwt-Assertion": forged }, settings: access })).status).toBe(401);
  });

  it("refuses an Access JWT without exp, or whose identity is not a plain string", async () => {
    const access = { ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com", ACCESS_AUD: "aud-tag-123", ACCESS_JWKS_URL: sims.jwksUrl };
    const claims = { iss: "https://zgate-sec.cloudflareaccess.com", aud: "aud-tag-123" };
    for (const extra of [
      { email: "sec@zakgt.test", exp: null },
      { email: { name: "sec" }, sub: { id: 1 } },
      { email: 42, sub: ["usr_1"] },
      { email: "", sub: "" },
      { email: "two words@x.y" },
    ]) {
      const token = await mintToken({ ...claims, ...extra });
      const response = await call("/admin/v1/keys", { headers: { "Cf-Access-Jwt-Assertion": token }, settings: access });
      expect(response.status, JSON.stringify(extra)).toBe(401);
      expect(await json(response)).toEqual({ error: { code: "UNAUTHORIZED", message: "Invalid admin credentials" } });
    }
    // The subject stands in for a missing email, as a readable actor.
    const bySub = await mintToken({ ...claims, sub: "svc-rotation-bot" });
    const account = freshAccount();
    const created = await call("/admin/v1/keys", {
      method: "POST",
      headers: { "Cf-Access-Jwt-Assertion": bySub, "Content-Type": "application/json" },
      body: JSON.stringify({ product: "zsky", account }),
      settings: access,
    });
    expect(created.status).toBe(201);
    expect((await json(await admin(`/audit?target=${(await json(created)).id}`))).entries[0].actor).toBe("admin:svc-rotation-bot");
  });
});

describe("admin API: keys", () => {
  it.each([
    ["zakgt", "zak_live_"],
    ["zsky", "zsky_live_"],
    ["zappway", "zw_live_"],
  ] as const)("creates a %s key: 201, plaintext `key` at the top level, once", async (product, prefix) => {
    const account = freshAccount();
    const response = await admin("/keys", { json: { product, account, label: "CRM sync", plan: "pro", scopes: ["*"] } });
    expect(response.status).toBe(201);
    const body = await json(response);
    expect(body.key.startsWith(prefix)).toBe(true);
    expect(body).toMatchObject({
      product,
      account,
      label: "CRM sync",
      plan: "pro",
      prefix,
      last4: body.key.slice(-4),
      status: "active",
      imported: false,
    });
    expect(body.id).toMatch(/^key_[0-9A-Za-z]{20}$/);

    const again = await json(await admin(`/keys/${body.id}`));
    expect(again.key).toBeUndefined();
    expect(JSON.stringify(again)).not.toContain(body.key);
    expect(again.last4).toBe(body.key.slice(-4));
  });

  it("refuses bad input with 400 naming the field", async () => {
    const cases: [unknown, RegExp][] = [
      [{ product: "zmail", account: "a" }, /^product: /],
      [{ product: "zsky" }, /^account: /],
      [{ product: "zsky", account: "" }, /^account: /],
      [{ product: "zsky", account: "a", scopes: ["DROP TABLE"] }, /^scopes\.0: /],
      [{ product: "zsky", account: "a", expires_at: "tomorrow" }, /^expires_at: /],
      [{ product: "zsky", account: "a", expires_at: "2001-01-01T00:00:00Z" }, /^expires_at: must be in the future/],
      [{ product: "zsky", account: "a", color: "red" }, /color|Unrecognized/],
      [{ product: "zsky", account: "a", mode: "test" }, /^mode: test keys exist only for products with a test mode/],
      [{ product: "zsky", account: "a", import_key: "legacy-key-1", import_sha256: "a".repeat(64) }, /^import_key: /],
    ];
    for (const [body, message] of cases) {
      const response = await admin("/keys", { json: body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const error = (await json(response)).error;
      expect(error.code).toBe("BAD_REQUEST");
      expect(error.message).toMatch(message);
    }
    const notJson = await call("/admin/v1/keys", {
      method: "POST",
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: "{",
    });
    expect(notJson.status).toBe(400);
  });

  it("account and user ids: 1 to 128 of [A-Za-z0-9_.:@-] on every route that takes one, 400 otherwise, in the OpenAPI document too", async () => {
    const bad = ["acct\nx", "acct x", "acct/x", "acct%x", "ácct", "a".repeat(129)];
    for (const account of bad) {
      const created = await admin("/keys", { json: { product: "zsky", account } });
      expect(created.status, JSON.stringify(account)).toBe(400);
      expect((await json(created)).error.message).toMatch(/^account: 1 to 128 characters/);
      const id = encodeURIComponent(account);
      for (const [path, init] of [
        [`/keys?account=${id}`, {}],
        [`/accounts/zappway/${id}/plan`, { method: "PUT", json: { plan: "pro" } }],
        [`/accounts/zsky/${id}/overage`, { method: "PUT", json: { enabled: false, monthly_cap_cents: 0 } }],
        [`/users/${id}/revoke-sessions`, { json: {} }],
      ] as const) {
        const response = await admin(path, init);
        expect(response.status, `${path} ${JSON.stringify(account)}`).toBe(400);
        expect((await json(response)).error.message).toMatch(/^(account|user_id): 1 to 128 characters/);
      }
    }
    // Every allowed character, at the longest: stored, and its key works through to the origin.
    const account = `${freshAccount()}.Org:9@x-`.padEnd(128, "z");
    const { key } = await createKey("zappway", { account });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    expect((await admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: { plan: "pro" } })).status).toBe(200);

    const document = await json(await call("/openapi.json"));
    expect(document.components.schemas.AccountId).toMatchObject({ type: "string", pattern: "^[A-Za-z0-9_.:@-]{1,128}$" });
    const idSchema = (path: string, method: string, name: string) =>
      document.paths[path][method].parameters.find((p: { name: string }) => p.name === name).schema;
    expect(idSchema("/admin/v1/users/{user_id}/revoke-sessions", "post", "user_id")).toEqual({ $ref: "#/components/schemas/AccountId" });
    expect(idSchema("/admin/v1/accounts/{product}/{account}/plan", "put", "account")).toEqual({ $ref: "#/components/schemas/AccountId" });
    expect(idSchema("/admin/v1/keys", "get", "account")).toEqual({ $ref: "#/components/schemas/AccountId" });
  });

  it("lists and filters keys, newest first, with a cursor", async () => {
    const account = freshAccount();
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await createKey("zappway", { account, label: `k${i}` }));
    await admin(`/keys/${made[0]!.id}/revoke`, { method: "POST" });

    const first = await json(await admin(`/keys?account=${account}&limit=2`));
    expect(first.keys.map((k: { label: string }) => k.label)).toEqual(["k4", "k3"]);
    expect(first.next_cursor).toBeTruthy();
    const second = await json(await admin(`/keys?account=${account}&limit=2&cursor=${first.next_cursor}`));
    expect(second.keys.map((k: { label: string }) => k.label)).toEqual(["k2", "k1"]);
    const third = await json(await admin(`/keys?account=${account}&limit=2&cursor=${second.next_cursor}`));
    expect(third.keys.map((k: { label: string }) => k.label)).toEqual(["k0"]);
    expect(third.next_cursor).toBeNull();

    const revoked = await json(await admin(`/keys?account=${account}&status=revoked`));
    expect(revoked.keys.map((k: { id: string }) => k.id)).toEqual([made[0]!.id]);
    const active = await json(await admin(`/keys?account=${account}&status=active&product=zappway`));
    expect(active.keys).toHaveLength(4);
    expect(JSON.stringify(active)).not.toMatch(/zw_live_[0-9A-Za-z]{36}/);

    expect((await admin("/keys?limit=0")).status).toBe(400);
    expect((await admin("/keys?cursor=garbage")).status).toBe(400);
    expect((await admin("/keys?status=deleted")).status).toBe(400);
  });

  it("gets one key; 404 for an unknown id", async () => {
    const { id } = await createKey("zsky");
    expect((await json(await admin(`/keys/${id}`))).id).toBe(id);
    const missing = await admin("/keys/key_doesnotexist");
    expect(missing.status).toBe(404);
    expect(await json(missing)).toEqual({ error: { code: "NOT_FOUND", message: "Key not found" } });
    expect((await admin("/keys/key_doesnotexist/revoke", { method: "POST" })).status).toBe(404);
  });

  it("revokes a key: the next call with it fails, the record says who and when", async () => {
    const { id, key } = await createKey("zsky");
    expect(
      (
        await call("/zsky/v1/images/generate", {
          method: "POST",
          headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json" },
          body: '{"prompt":"a cat"}',
        })
      ).status,
    ).toBe(200);
    const revoked = await admin(`/keys/${id}/revoke`, { method: "POST" });
    expect(revoked.status).toBe(200);
    expect(await json(revoked)).toMatchObject({ id, status: "revoked", revoked_by: "admin:token" });
    const after = await call("/zsky/v1/jobs/abc", { headers: keyHeaders("zsky", key) });
    expect(after.status).toBe(401);
    expect(await json(after)).toEqual({ error: "Invalid API key" });
    // Revoking twice is harmless.
    expect((await admin(`/keys/${id}/revoke`, { method: "POST" })).status).toBe(200);
  });

  it("revokes a key by its leaked plaintext", async () => {
    const { id, key } = await createKey("zappway", { label: "leaked" });
    const response = await admin("/keys/revoke-leaked", { json: { key } });
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ id, status: "revoked" });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(401);
    const unknown = await admin("/keys/revoke-leaked", { json: { key: "zw_live_notarealkeyatall" } });
    expect(unknown.status).toBe(404);
    expect((await admin("/keys/revoke-leaked", { json: {} })).status).toBe(400);
  });

  it("registers keys from before zgate by plaintext or SHA-256; they work by hash alone", async () => {
    const legacy = `legacy-zsky-${crypto.randomUUID()}`;
    const byPlain = await admin("/keys", { json: { product: "zsky", account: freshAccount(), import_key: legacy } });
    expect(byPlain.status).toBe(201);
    const body = await json(byPlain);
    expect(body.key).toBeUndefined();
    expect(body).toMatchObject({ imported: true, prefix: "", last4: legacy.slice(-4) });
    expect((await call("/zsky/v1/jobs/x", { headers: { "X-API-Key": legacy } })).status).toBe(404); // admitted, origin: no such job

    const other = `legacy-zw-${crypto.randomUUID()}`;
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(other)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const byHash = await admin("/keys", { json: { product: "zappway", account: freshAccount(), import_sha256: digest } });
    expect(byHash.status).toBe(201);
    expect((await call("/zappway/api/v1/agents", { headers: { Authorization: `Bearer ${other}` } })).status).toBe(200);

    const duplicate = await admin("/keys", { json: { product: "zappway", account: freshAccount(), import_sha256: digest } });
    expect(duplicate.status).toBe(409);
    expect(await json(duplicate)).toEqual({ error: { code: "CONFLICT", message: "This key is already registered" } });
  });

  it("imports a platform key that carries a zgate prefix in another shape, and it works at once", async () => {
    const legacy = `zsky_live_4f9a_${crypto.randomUUID().replaceAll("-", "")}`;
    const imported = await admin("/keys", { json: { product: "zsky", account: freshAccount(), import_key: legacy } });
    expect(imported.status).toBe(201);
    expect((await call("/zsky/v1/usage", { headers: { "X-API-Key": legacy } })).status).toBe(200);
  });

  it("refuses to import what the edge would refuse: a zgate-shaped key with a bad checksum, or a zgate-issued key", async () => {
    const issued = generateKey("zsky_live_");
    const mistyped = issued.slice(0, 12) + (issued[12] === "a" ? "b" : "a") + issued.slice(13);
    for (const [key, why] of [
      [mistyped, /checksum does not match/],
      [issued, /zgate-issued key/],
    ] as const) {
      const response = await admin("/keys", { json: { product: "zsky", account: freshAccount(), import_key: key } });
      expect(response.status).toBe(400);
      const body = await json(response);
      expect(body.error.code).toBe("BAD_REQUEST");
      expect(body.error.message).toMatch(why);
    }
  });
});

describe("admin API: sessions and audit", () => {
  it("revokes every session of a ZakGT user; new sessions work", async () => {
    const { userId, login } = await newUser();
    const old = await login();
    expect((await call("/zakgt/api/v1/users/me", { headers: { Authorization: `Bearer ${old}` } })).status).toBe(200);
    const clock = useTestClock();
    // With no clock skew tolerated, a token from the next second works (with the skew, see test/jwt.test.ts).
    const response = await admin(`/users/${userId}/revoke-sessions`, { json: {}, settings: { JWT_CLOCK_SKEW_SECONDS: "0" } });
    expect(response.status).toBe(200);
    expect(await json(response)).toEqual({ user_id: userId, sessions_revoked: true, keys_revoked: [] });
    expect((await call("/zakgt/api/v1/users/me", { headers: { Authorization: `Bearer ${old}` } })).status).toBe(401);
    await clock.advance(1000);
    const later = await mintToken({ sub: userId, iat: Math.floor(clock.now() / 1000) });
    expect((await call("/zakgt/api/v1/users/me", { headers: { Authorization: `Bearer ${later}` } })).status).toBe(200);
  });

  it("can revoke the user's keys at the same time", async () => {
    const user = freshAccount("usr");
    const { id, key } = await createKey("zakgt", { account: user });
    const response = await admin(`/users/${user}/revoke-sessions`, { json: { revoke_keys: true } });
    expect((await json(response)).keys_revoked).toEqual([id]);
    expect(
      (
        await call("/zakgt/api/v1/ai/chat", {
          method: "POST",
          headers: { ...keyHeaders("zakgt", key), "Content-Type": "application/json" },
          body: '{"message":"x"}',
        })
      ).status,
    ).toBe(401);
  });

  it("writes every admin action to the audit log with actor, time, target and request id", async () => {
    const created = await admin("/keys", {
      json: { product: "zsky", account: freshAccount(), label: "audited" },
      headers: { "X-Request-Id": "audit-create-0001" },
    });
    const { id } = await json(created);
    await admin(`/keys/${id}/revoke`, { method: "POST", headers: { "X-Request-Id": "audit-revoke-0001" } });
    const log = await json(await admin(`/audit?target=${id}`));
    expect(log.entries.map((e: { action: string }) => e.action)).toEqual(["key.revoke", "key.create"]);
    const [revoke, create] = log.entries;
    expect(create).toMatchObject({ actor: "admin:token", target: id, product: "zsky", request_id: "audit-create-0001" });
    expect(revoke).toMatchObject({ actor: "admin:token", target: id, request_id: "audit-revoke-0001" });
    expect(Date.parse(create.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(log)).not.toMatch(/zsky_live_[0-9A-Za-z]{36}/);

    const page = await json(await admin("/audit?limit=1"));
    expect(page.entries).toHaveLength(1);
    const next = await json(await admin(`/audit?limit=1&cursor=${page.next_cursor}`));
    expect(next.entries[0].id).toBeLessThan(page.entries[0].id);
  });
});
