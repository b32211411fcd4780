import { describe, expect, it } from "vitest";
import { admin, call, createKey, freshAccount, json, keyHeaders } from "../helpers";

describe("ZSky POST /v1/keys/rotate", () => {
  it("returns a new key once; the old one stops working immediately", async () => {
    const old = await createKey("zsky", { label: "render farm", plan: "max" });
    const response = await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) });
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.key).toMatch(/^zsky_live_[0-9A-Za-z]{36}$/);
    expect(body).toMatchObject({ last4: body.key.slice(-4), replaces_key_id: old.id });

    const stale = await call("/zsky/v1/jobs/x", { headers: keyHeaders("zsky", old.key) });
    expect(stale.status).toBe(401);
    expect(await json(stale)).toEqual({ error: "Invalid API key" });
    expect((await call("/zsky/v1/jobs/x", { headers: keyHeaders("zsky", body.key) })).status).toBe(404); // admitted; no such job

    const fresh = await json(await admin(`/keys/${body.key_id}`));
    expect(fresh).toMatchObject({ account: old.account, label: "render farm", plan: "max", status: "active" });
    const audit = await json(await admin(`/audit?target=${old.id}`));
    expect(audit.entries[0]).toMatchObject({ action: "key.rotate", actor: `key:${old.id}` });
    // A rotated key cannot rotate again.
    expect((await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) })).status).toBe(401);
  });

  it("needs a key, in ZSky's envelope", async () => {
    const response = await call("/zsky/v1/keys/rotate", { method: "POST" });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ error: "Missing API key" });
    expect((await call("/zsky/v1/keys/rotate", { method: "GET" })).status).toBe(405);
  });
});

describe("ZappWay keys", () => {
  it("have labels; listings show only the last characters; revocation gives 401 in ZappWay's envelope", async () => {
    const account = freshAccount("org");
    const crm = await createKey("zappway", { account, label: "CRM Integration" });
    const mobile = await createKey("zappway", { account, label: "Mobile App" });
    const listing = await json(await admin(`/keys?product=zappway&account=${account}`));
    expect(listing.keys.map((k: { label: string; last4: string }) => [k.label, k.last4])).toEqual([
      ["Mobile App", mobile.key.slice(-4)],
      ["CRM Integration", crm.key.slice(-4)],
    ]);
    expect(JSON.stringify(listing)).not.toContain(crm.key.slice(8, 20));

    await admin(`/keys/${crm.id}/revoke`, { method: "POST" });
    const after = await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", crm.key) });
    expect(after.status).toBe(401);
    expect(await json(after)).toEqual({ error: { code: "UNAUTHORIZED", message: "Invalid or expired API key." } });
    // The organisation's other key is untouched.
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", mobile.key) })).status).toBe(200);
  });
});
