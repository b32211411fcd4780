import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { hashKey } from "../../src/keys/key-format";
import { ADMIN_TOKEN, admin, call, createKey, freshAccount, json, keyHeaders, someIp } from "../helpers";
import { appendBatch } from "../usage";
import { encodeBatch, type UsageCall } from "../../src/usage/usage-batches";
import { seenAddresses, usageLogFor } from "../../src/usage/usage-client";
import { SEARCH_ACCOUNTS } from "../../src/usage/usage-history";

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

/** A recorded time in a query string. */
const q = (iso: string) => encodeURIComponent(iso);

describe("GET /admin/v1/calls: search by client address and time", () => {
  it("which keys an address used: across all accounts for the last 24 hours, and within one account", async () => {
    const [x, y] = [someIp(), someIp()];
    const account = freshAccount();
    const a1 = await createKey("zsky", { account, label: "render farm" });
    const a2 = await createKey("zsky", { account });
    const b1 = await createKey("zappway");
    const agents = (key: string, address: string, requestId: string) =>
      call("/zappway/api/v1/agents", {
        headers: { ...keyHeaders("zappway", key), "CF-Connecting-IP": address, "X-Request-Id": requestId },
      });
    expect((await zskyUsage(a1.key, { "CF-Connecting-IP": x, "X-Request-Id": "search-1" })).status).toBe(200);
    expect((await zskyUsage(a2.key, { "CF-Connecting-IP": y, "X-Request-Id": "search-2" })).status).toBe(200);
    expect((await agents(b1.key, x, "search-3")).status).toBe(200);
    expect((await zskyUsage(a1.key, { "CF-Connecting-IP": y, "X-Request-Id": "search-4" })).status).toBe(200);

    const everywhere = await json(await admin(`/calls?address=${x}`));
    expect(everywhere.calls.map((c: { request_id: string; key_id: string }) => [c.request_id, c.key_id])).toEqual([
      ["search-3", b1.id],
      ["search-1", a1.id],
    ]);
    expect(everywhere.calls[0]).toMatchObject({ product: "zappway", account: b1.account, client_address: x, outcome: "admitted" });
    expect(everywhere.keys).toEqual([
      expect.objectContaining({ key_id: b1.id, product: "zappway", account: b1.account, calls: 1, admitted: 1 }),
      expect.objectContaining({ key_id: a1.id, account, label: "render farm", last4: a1.key.slice(-4), calls: 1, admitted: 1 }),
    ]);
    expect(everywhere.keys_complete).toBe(true);
    expect(Date.now() - Date.parse(everywhere.since)).toBeGreaterThanOrEqual(86_400_000);

    const inAccount = await json(await admin(`/calls?product=zsky&account=${account}&address=${x}`));
    expect(inAccount.keys.map((k: { key_id: string }) => k.key_id)).toEqual([a1.id]);
    // Every call of the account, whichever key and address.
    const all = await json(await admin(`/calls?product=zsky&account=${account}`));
    expect(all.calls.map((c: { request_id: string }) => c.request_id)).toEqual(["search-4", "search-2", "search-1"]);
    expect(all.keys.map((k: { key_id: string; calls: number }) => [k.key_id, k.calls])).toEqual([
      [a1.id, 2],
      [a2.id, 1],
    ]);
  });

  it("every call of an account between two times, newest first, paged with a cursor", async () => {
    const account = freshAccount();
    const keys = [await createKey("zsky", { account }), await createKey("zsky", { account })];
    for (let i = 0; i < 5; i++) {
      await zskyUsage(keys[i % 2]!.key, { "X-Request-Id": `range-call-${i}` });
      await new Promise((r) => setTimeout(r, 3));
    }
    const all = (await json(await admin(`/calls?product=zsky&account=${account}`))).calls;
    expect(all.map((c: { request_id: string }) => c.request_id)).toEqual([
      "range-call-4",
      "range-call-3",
      "range-call-2",
      "range-call-1",
      "range-call-0",
    ]);
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = await json(
        await admin(
          `/calls?product=zsky&account=${account}&since=${q(all[3].time)}&until=${q(all[1].time)}&limit=2${cursor && `&cursor=${cursor}`}`,
        ),
      );
      expect(page.calls.length).toBeLessThanOrEqual(2);
      seen.push(...page.calls.map((c: { request_id: string }) => c.request_id));
      cursor = page.next_cursor ?? "";
    } while (cursor);
    expect(seen).toEqual(["range-call-3", "range-call-2", "range-call-1"]);
  });

  it("one account's calls from before the last 24 hours, never across all accounts", async () => {
    const key = await createKey("zappway");
    const address = someIp();
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    const old = { at: twoDaysAgo, method: "GET", path: "/api/v1/agents", status: 200, requestId: "old-call" };
    await appendBatch(key.id, "oldbatch01", [
      { ...old, clientAddress: address, country: "NL", asn: 64500, userAgent: "sdk/1", outcome: "admitted" },
    ]);
    const since = q(new Date(twoDaysAgo - 60_000).toISOString());
    const inAccount = await json(await admin(`/calls?product=zappway&account=${key.account}&address=${address}&since=${since}`));
    expect(inAccount.calls.map((c: { request_id: string }) => c.request_id)).toEqual(["old-call"]);
    expect((await json(await admin(`/calls?address=${address}`))).calls).toEqual([]);
    const refused = await admin(`/calls?address=${address}&since=${since}`);
    expect(refused.status).toBe(400);
    expect((await json(refused)).error.message).toContain("at most 24 hours back");
  });

  it("across accounts, more accounts with calls in the range than one search reads is a 400 asking for a narrower one, never a cut", async () => {
    const address = someIp();
    const now = Date.now();
    // Calls of SEARCH_ACCOUNTS + 1 ZSky accounts, appended as their isolates would, one from `address`.
    await Promise.all(
      Array.from({ length: SEARCH_ACCOUNTS + 1 }, (_, n) => {
        const ref = { product: "zsky" as const, accountId: freshAccount("many") };
        const calls: UsageCall[] = [
          {
            at: now - n,
            method: "GET",
            path: "/v1/usage",
            status: 200,
            requestId: `many-${n}`,
            clientAddress: n === 7 ? address : someIp(),
            country: null,
            asn: null,
            userAgent: null,
            outcome: "admitted",
          },
        ];
        return usageLogFor(env, ref).append(ref, [encodeBatch(`key_many${n}`, `many${n}`, calls)], seenAddresses(calls));
      }),
    );
    const refused = await admin("/calls?product=zsky");
    expect(refused.status).toBe(400);
    expect((await json(refused)).error.message).toContain(`more than ${SEARCH_ACCOUNTS} accounts`);
    const byAddress = await json(await admin(`/calls?product=zsky&address=${address}`));
    expect(byAddress.calls.map((c: { request_id: string }) => c.request_id)).toEqual(["many-7"]);
  });

  it("400 on a bad filter or cursor, never a listing of everything", async () => {
    for (const query of [
      "account=acct_x",
      "address=not-an-address",
      "address=1.2.3.4&since=yesterday",
      "cursor=notacursor",
      "limit=101",
      "addr=1.2.3.4",
      "product=zsky&account=acct_x&since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
    ]) {
      const response = await admin(`/calls?${query}`);
      expect(response.status, query).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
  });
});

describe("GET /admin/v1/keys/{id}/usage/export", () => {
  /** Calls whose user agents a spreadsheet would run as formulas, and one with quotes and a comma. */
  const AGENTS = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", 'sdk "quoted", v2'];

  async function keyWithCalls() {
    const issued = await createKey("zsky");
    for (const [i, agent] of AGENTS.entries()) {
      await zskyUsage(issued.key, { "User-Agent": agent, "X-Request-Id": `export-${i}`, "CF-Connecting-IP": "203.0.113.10" });
      await new Promise((r) => setTimeout(r, 3));
    }
    return issued;
  }

  it("NDJSON: every call, newest first, with its key; audited as key.export_usage", async () => {
    const { id } = await keyWithCalls();
    const response = await admin(`/keys/${id}/usage/export?format=ndjson`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/x-ndjson");
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="${id}-calls.ndjson"`);
    expect(response.headers.get("zgate-export-calls")).toBe("5");
    expect(response.headers.get("link")).toBeNull();
    const lines = (await response.text())
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.request_id, l.user_agent])).toEqual(AGENTS.map((agent, i) => [`export-${i}`, agent]).reverse());
    expect(lines[0]).toMatchObject({
      key_id: id,
      method: "GET",
      path: "/v1/usage",
      status: 200,
      client_address: "203.0.113.10",
      outcome: "admitted",
    });
    const [entry] = (await json(await admin(`/audit?target=${id}&action=key.export_usage`))).entries;
    expect(entry).toMatchObject({ actor: "admin:token", detail: { format: "ndjson", since: null, until: null, calls: 5 } });
  });

  it("CSV: a header row, quoted text, and formulas escaped so a spreadsheet shows them; paged at limit with a Link to the rest", async () => {
    const { id } = await keyWithCalls();
    const first = await admin(`/keys/${id}/usage/export?format=csv&limit=3`);
    expect(first.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const rows = (await first.text()).split("\r\n");
    expect(rows[0]).toBe("time,key_id,method,path,status,outcome,client_address,country,asn,user_agent,request_id");
    expect(rows.slice(1, 4).map((row) => row.split(",").slice(9).join(","))).toEqual([
      '"sdk ""quoted"", v2","export-4"',
      `"'@SUM(A1)","export-3"`,
      `"'-2+3","export-2"`,
    ]);
    expect(rows[1]).toMatch(new RegExp(`^"\\d{4}-[^"]+Z","${id}","GET","/v1/usage",200,"admitted","203\\.0\\.113\\.10",,,`));
    expect(rows[4]).toBe("");
    const link = first.headers.get("link")!;
    expect(link).toMatch(/^<\/admin\/v1\/keys\/[^>]+&cursor=[^>]+>; rel="next"$/);
    const next = await call(/^<([^>]+)>/.exec(link)![1]!, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(next.headers.get("link")).toBeNull();
    const rest = (await next.text()).split("\r\n").slice(1, -1);
    expect(rest.map((row) => row.split(",").slice(9).join(","))).toEqual([
      `"'+1+1","export-1"`,
      `"'=HYPERLINK(""http://evil.example"",""x"")","export-0"`,
    ]);
  });

  it("400 on a bad format, limit, range or cursor; 404 for an unknown key", async () => {
    const { id } = await createKey("zsky");
    for (const query of [
      "format=xml",
      "limit=0",
      "limit=10001",
      "since=now",
      "cursor=zzz",
      "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z",
    ]) {
      const response = await admin(`/keys/${id}/usage/export?${query}`);
      expect(response.status, query).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    expect((await admin("/keys/key_doesnotexist/usage/export")).status).toBe(404);
  });
});
