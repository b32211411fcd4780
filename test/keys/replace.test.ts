import { describe, expect, it } from "vitest";
import { admin, call, createKey, freshAccount, json, keyHeaders } from "../helpers";

const usage = (key: string) => call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) });

async function auditOf(target: string) {
  return (await json(await admin(`/audit?target=${target}`))).entries as {
    actor: string;
    action: string;
    detail: Record<string, unknown>;
  }[];
}

describe("POST /admin/v1/keys/{id}/replace", () => {
  it("a revoked key's replacement: its account, label, scopes, plan, limits and future expiry, shown once, audited on both keys", async () => {
    const expiresAt = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const old = await createKey("zsky", {
      label: "render farm",
      plan: "pro",
      scopes: ["images", "usage"],
      limit_override: { daily_per_key: { image: 7 } },
      expires_at: expiresAt,
    });
    await admin("/keys/revoke-leaked", { json: { key: old.key, reason: "in a gist" } });
    const response = await admin(`/keys/${old.id}/replace`, { json: { reason: "leaked, customer needs a key", ticket: "SEC-9" } });
    expect(response.status).toBe(201);
    const body = await json(response);
    expect(body.key).toMatch(/^zsky_live_/);
    expect(body).toMatchObject({
      account: old.account,
      label: "render farm",
      plan: "pro",
      scopes: ["images", "usage"],
      limit_override: { daily_per_key: { image: 7 } },
      expires_at: expiresAt,
      replaces: old.id,
      status: "active",
      old_key: { id: old.id, status: "revoked" },
    });
    expect((await usage(body.key)).status).toBe(200);
    expect((await usage(old.key)).status).toBe(401);
    expect((await json(await admin(`/keys/${body.id}`))).key).toBeUndefined();
    expect((await auditOf(body.id))[0]).toMatchObject({ actor: "admin:token", action: "key.create", detail: { replaces: old.id } });
    expect((await auditOf(old.id))[0]).toMatchObject({
      action: "key.replace",
      detail: { replaced_by: body.id, reason: "leaked, customer needs a key", ticket: "SEC-9" },
    });
    // A later report of the leaked key never reaches the replacement.
    const again = await json(await admin("/keys/revoke-leaked", { json: { key: old.key } }));
    expect(again.revoked.map((r: { id: string }) => r.id)).toEqual([old.id]);
    expect((await usage(body.key)).status).toBe(200);
  });

  it("a key rolled with 0 s grace can be replaced too, and gets no expiry from its ended grace", async () => {
    const old = await createKey("zappway");
    expect((await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 0 } })).status).toBe(201);
    const response = await admin(`/keys/${old.id}/replace`, { method: "POST" });
    expect(response.status).toBe(201);
    const body = await json(response);
    expect(body).toMatchObject({ replaces: old.id, expires_at: null, old_key: { status: "expired" } });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", body.key) })).status).toBe(200);
  });

  it("409 for a key still active (roll it) or an account at its active-key limit, 404 for no key, 400 for a bad body", async () => {
    const active = await createKey("zsky");
    const stillActive = await admin(`/keys/${active.id}/replace`, { json: {} });
    expect(stillActive.status).toBe(409);
    expect((await json(stillActive)).error.message).toContain("roll it instead");

    // Unlike a roll, a replacement is a key more for the account: it counts against the cap.
    const account = freshAccount();
    const full = { MAX_ACTIVE_KEYS_PER_ACCOUNT: "1" };
    const dead = await createKey("zsky", { account });
    await admin(`/keys/${dead.id}/revoke`, { method: "POST" });
    await createKey("zsky", { account });
    const capped = await admin(`/keys/${dead.id}/replace`, { json: {}, settings: full });
    expect(capped.status).toBe(409);
    expect((await json(capped)).error.message).toContain("active keys");

    expect((await admin("/keys/key_doesnotexist/replace", { json: {} })).status).toBe(404);
    for (const bad of [{ reason: "" }, { ticket: 5 }, { label: "x" }]) {
      const response = await admin(`/keys/${dead.id}/replace`, { json: bad });
      expect(response.status, JSON.stringify(bad)).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
  });
});
