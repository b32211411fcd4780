import { describe, expect, it } from "vitest";
import { hashKey } from "../../src/keys/key-format";
import { admin, call, createKey, freshAccount, json, keyHeaders } from "../helpers";

const zskyUsage = (key: string, from: Record<string, string> = {}, cf?: Record<string, unknown>) =>
  call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", key), ...from }, ...(cf ? { cf } : {}) } as RequestInit);

describe("POST /admin/v1/keys/lookup", () => {
  it("finds a key by its plaintext or its SHA-256 and leaves it working", async () => {
    const { id, key } = await createKey("zsky", { label: "render farm" });
    const byPlaintext = await admin("/keys/lookup", { json: { key } });
    expect(byPlaintext.status).toBe(200);
    expect(await json(byPlaintext)).toMatchObject({ id, status: "active", label: "render farm", matched_as: "plaintext" });
    const hash = await hashKey(key);
    for (const form of [hash, hash.toUpperCase()]) {
      const byHash = await admin("/keys/lookup", { json: { key: form } });
      expect(await json(byHash)).toMatchObject({ id, status: "active", matched_as: "sha256" });
    }
    expect((await zskyUsage(key)).status).toBe(200);
    expect((await json(await admin(`/keys/${id}`))).revoked_at).toBeNull();
    // Each lookup is in the key's audit trail, under the acting identity, without what was pasted.
    const trail = (await json(await admin(`/audit?target=${id}`))).entries.filter((e: { action: string }) => e.action === "key.lookup");
    expect(trail.map((e: { actor: string; detail: unknown }) => [e.actor, e.detail])).toEqual([
      ["admin:token", { matched_as: "sha256" }],
      ["admin:token", { matched_as: "sha256" }],
      ["admin:token", { matched_as: "plaintext" }],
    ]);
    expect(JSON.stringify(trail)).not.toContain(key);
    expect(JSON.stringify(trail)).not.toContain(hash);
  });

  it("404 for a key zgate does not know, 400 for a bad body, never echoing the key", async () => {
    const unknown = await admin("/keys/lookup", { json: { key: "zsky_live_notarealkey" } });
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toEqual({ error: { code: "NOT_FOUND", message: "Key not found" } });
    for (const body of [{}, { key: "" }, { key: 42 }, { key: "x", extra: 1 }]) {
      const bad = await admin("/keys/lookup", { json: body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect((await json(bad)).error.code).toBe("BAD_REQUEST");
    }
  });
});

describe("GET /admin/v1/keys filters", () => {
  it("by last4, label (part, any case), account, status and creation time", async () => {
    const account = freshAccount();
    const a = await createKey("zappway", { account, label: "Billing Export" });
    const b = await createKey("zappway", { account, label: "CRM sync" });
    await admin(`/keys/${b.id}/revoke`, { method: "POST" });
    const ids = async (query: string) => (await json(await admin(`/keys?${query}`))).keys.map((k: { id: string }) => k.id);

    expect(await ids(`account=${account}&last4=${a.key.slice(-4)}`)).toEqual([a.id]);
    expect(await ids(`last4=${encodeURIComponent(b.key.slice(-4))}&product=zappway`)).toContain(b.id);
    expect(await ids(`account=${account}&label=billing`)).toEqual([a.id]);
    expect(await ids(`account=${account}&label=${encodeURIComponent("%")}`)).toEqual([]);
    expect(await ids(`account=${account}&status=revoked`)).toEqual([b.id]);
    expect(await ids(`account=${account}&status=active`)).toEqual([a.id]);
    const created = (await json(await admin(`/keys/${b.id}`))).created_at as string;
    expect(await ids(`account=${account}&created_after=${encodeURIComponent(created)}`)).toEqual([b.id]);
    expect(await ids(`account=${account}&created_before=${encodeURIComponent(created)}`)).toEqual([a.id]);
  });

  it("400 on an unknown or malformed filter instead of listing every key", async () => {
    for (const query of ["last_4=abcd", "lastfour=1", "last4=abc", "last4=abcde", "created_after=yesterday", "status=gone", "label="]) {
      const response = await admin(`/keys?${query}`);
      expect(response.status, query).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    expect((await json(await admin("/keys?last_4=abcd"))).error.message).toBe("last_4: unknown field");
  });
});

describe("GET /admin/v1/keys/{id}/usage", () => {
  it("every call with address, country, ASN, user agent and outcome, and a summary per address", async () => {
    const { id, key } = await createKey("zsky", { limit_override: { windows: { burst: { limit: 2 } } } });
    const customer = { "CF-Connecting-IP": "203.0.113.10", "User-Agent": "customer-sdk/1.0" };
    const attacker = { "CF-Connecting-IP": "2001:db8:bad::1", "User-Agent": "curl/8.0" };
    expect((await zskyUsage(key, customer, { country: "NL", asn: 64500 })).status).toBe(200);
    expect((await zskyUsage(key, attacker, { country: "RU", asn: 64666 })).status).toBe(200);
    expect((await zskyUsage(key, attacker, { country: "RU", asn: 64666 })).status).toBe(429);
    const before = (await json(await admin(`/keys/${id}`))).last_used_at;
    await admin(`/keys/${id}/revoke`, { method: "POST" });
    expect((await zskyUsage(key, attacker)).status).toBe(401);

    const response = await admin(`/keys/${id}/usage`);
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body.key_id).toBe(id);
    expect(body.calls.map((c: { outcome: string }) => c.outcome)).toEqual(["invalid_credential", "rate_limited", "admitted", "admitted"]);
    expect(body.calls[3]).toMatchObject({
      method: "GET",
      path: "/v1/usage",
      status: 200,
      client_address: "203.0.113.10",
      country: "NL",
      asn: 64500,
      user_agent: "customer-sdk/1.0",
    });
    expect(body.addresses_complete).toBe(true);
    expect(body.addresses).toEqual([
      {
        client_address: "2001:db8:bad::1",
        first_seen: body.calls[2].time,
        last_seen: body.calls[0].time,
        calls: 3,
        admitted: 1,
        countries: ["RU"],
        asns: [64666],
      },
      {
        client_address: "203.0.113.10",
        first_seen: body.calls[3].time,
        last_seen: body.calls[3].time,
        calls: 1,
        admitted: 1,
        countries: ["NL"],
        asns: [64500],
      },
    ]);
    // Refused calls (429, 401 after the revoke) never move last_used_at.
    expect((await json(await admin(`/keys/${id}`))).last_used_at).toBe(before);
    expect(before).toBe(body.calls[2].time);
  });

  it("pages with a cursor and filters by since/until", async () => {
    const { id, key } = await createKey("zsky");
    for (let i = 0; i < 5; i++) {
      await zskyUsage(key, { "X-Request-Id": `inv-page-${i}` });
      await new Promise((r) => setTimeout(r, 3));
    }
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = await json(await admin(`/keys/${id}/usage?limit=2${cursor && `&cursor=${cursor}`}`));
      expect(page.calls.length).toBeLessThanOrEqual(2);
      seen.push(...page.calls.map((c: { request_id: string }) => c.request_id));
      cursor = page.next_cursor ?? "";
    } while (cursor);
    expect(seen).toEqual(["inv-page-4", "inv-page-3", "inv-page-2", "inv-page-1", "inv-page-0"]);

    const all = (await json(await admin(`/keys/${id}/usage`))).calls;
    const since = encodeURIComponent(all[3].time);
    const until = encodeURIComponent(all[1].time);
    const window = await json(await admin(`/keys/${id}/usage?since=${since}&until=${until}`));
    expect(window.calls.map((c: { request_id: string }) => c.request_id)).toEqual(["inv-page-3", "inv-page-2", "inv-page-1"]);
    expect(window.addresses.reduce((n: number, a: { calls: number }) => n + a.calls, 0)).toBe(3);
  });

  it("400 on bad filters or cursor, 404 for an unknown key", async () => {
    const { id } = await createKey("zsky");
    for (const query of ["since=now", "until=2026-13-01T00:00:00Z", "cursor=notacursor", "address=1.2.3.4", "limit=0"]) {
      const response = await admin(`/keys/${id}/usage?${query}`);
      expect(response.status, query).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    const reversed = await admin(`/keys/${id}/usage?since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z`);
    expect(reversed.status).toBe(400);
    expect((await admin("/keys/key_doesnotexist/usage")).status).toBe(404);
  });
});
