import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, admin, call, createKey, json, keyHeaders, limitOverrides, mintToken, sims, someIp } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "../results/zsky-client";
import { Browser, pageText } from "./browser";

const roomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });

describe("security console: sign-in", () => {
  it("asks for sign-in, then signs in with the admin token: an HttpOnly, Secure, SameSite=Strict cookie that is not the token", async () => {
    const browser = new Browser();
    const first = await browser.get("/admin/");
    expect(first.status).toBe(303);
    expect(first.headers.get("location")).toBe("/admin/sign-in");

    const signedIn = await browser.signIn();
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get("location")).toBe("/admin/");
    const cookie = signedIn.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^__Secure-zgate_console=v1\.[0-9a-f]{32}\.\d+\.1\.[0-9a-f]{64};/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("Secure");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/admin");
    expect(cookie).toContain("Max-Age=28800");
    expect(cookie).not.toContain(ADMIN_TOKEN);

    const search = await browser.get("/admin/");
    expect(search.status).toBe(200);
    expect(search.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await search.text()).toContain("Key search");
  });

  it("a wrong token is a 401 page, and no session", async () => {
    const browser = new Browser();
    const refused = await browser.signIn("not-the-admin-token-at-all-0000");
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("not the admin token of this deployment");
    expect((await browser.get("/admin/")).status).toBe(303);
  });

  it("wrong tokens count as failed admin logins of the client address: past the limit, 429", async () => {
    const browser = new Browser({ headers: { "CF-Connecting-IP": someIp() } });
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await browser.signIn(`wrong-admin-token-${i}-0123456789`)).status);
    expect(statuses).toEqual([...Array(10).fill(401), 429]);
  });

  it("a tampered or foreign cookie is no session, and sign-out ends it", async () => {
    const browser = new Browser();
    await browser.signIn();
    const good = browser.cookie;
    browser.cookie = good.replace(/\.1\.([0-9a-f])/, (_, c) => `.1.${c === "0" ? "1" : "0"}`);
    expect((await browser.get("/admin/")).status).toBe(303);
    // The same session signed under another deployment's admin token.
    browser.cookie = good;
    expect(
      (
        await call("/admin/", {
          headers: { Cookie: good },
          redirect: "manual",
          settings: { ADMIN_TOKEN: "another-admin-token-0123456789abc" },
        })
      ).status,
    ).toBe(303);
    const page = await browser.get("/admin/");
    const out = await browser.post("/admin/sign-out", { csrf: Browser.csrf(await page.text()) });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/__Secure-zgate_console=;.*Max-Age=0/);
  });

  it("sign-out ends the session on the server: a copy of its cookie taken before is refused, another session is not", async () => {
    const browser = new Browser();
    const other = new Browser();
    await browser.signIn();
    await other.signIn();
    const copied = browser.cookie;
    const page = await (await browser.get("/admin/")).text();
    expect((await browser.post("/admin/sign-out", { csrf: Browser.csrf(page) })).status).toBe(303);

    const replayed = await call("/admin/", { headers: { Cookie: copied }, redirect: "manual" });
    expect(replayed.status).toBe(303);
    expect(replayed.headers.get("location")).toBe("/admin/sign-in");
    expect((await other.get("/admin/")).status).toBe(200);
  });

  it("sign out everywhere ends every token session, in every browser and every copy, audited; a new sign-in works", async () => {
    const browsers = [new Browser(), new Browser(), new Browser()];
    for (const browser of browsers) await browser.signIn();
    const copies = browsers.map((b) => b.cookie);
    const page = await (await browsers[0]!.get("/admin/")).text();
    expect(page).toContain("Sign out everywhere");
    const out = await browsers[0]!.post("/admin/sign-out-everywhere", { csrf: Browser.csrf(page) });
    expect(out.status).toBe(303);
    expect(out.headers.get("location")).toBe("/admin/sign-in");
    for (const cookie of copies) expect((await call("/admin/", { headers: { Cookie: cookie }, redirect: "manual" })).status).toBe(303);

    const [entry] = (await json(await admin("/audit?action=console.sessions_revoke&limit=1"))).entries;
    expect(entry).toMatchObject({ actor: "admin:token", action: "console.sessions_revoke" });
    expect(entry.detail.sessions_revoked).toBeGreaterThanOrEqual(3);

    const again = new Browser();
    expect((await again.signIn()).status).toBe(303);
    expect((await again.get("/admin/")).status).toBe(200);
    // The admin API's own route does the same, for a session in any browser.
    const revoked = await admin("/console-sessions/revoke", { method: "POST" });
    expect(await json(revoked)).toEqual({ sessions_revoked: 1 });
    expect((await again.get("/admin/")).status).toBe(303);
  });
});

describe("security console: CSRF", () => {
  it("refuses a forged form post (no token, another session's token) with 403, and the key stays active", async () => {
    const key = await createKey("zsky");
    const victim = new Browser();
    await victim.signIn();
    const attacker = new Browser();
    await attacker.signIn();
    const attackerToken = Browser.csrf(await (await attacker.get("/admin/")).text());
    for (const form of [
      { reason: "forged" } as Record<string, string>,
      { reason: "forged", csrf: attackerToken },
      { reason: "forged", csrf: "0".repeat(64) },
    ]) {
      const forged = await victim.post(`/admin/keys/${key.id}/revoke`, form);
      expect(forged.status).toBe(403);
      expect(await forged.text()).toContain("CSRF");
    }
    expect((await json(await admin(`/keys/${key.id}`))).status).toBe("active");
    const stillWorks = await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key.key) });
    expect(stillWorks.status).toBe(200);
  });

  it("the sign-in form needs its pre-session's token too", async () => {
    const browser = new Browser();
    const forged = await browser.post("/admin/sign-in", { token: ADMIN_TOKEN });
    expect(forged.status).toBe(403);
    expect(browser.cookie).toBe("");
  });

  it("with the session's token, revoke works, names admin:token in the audit log with the reason, and the key is refused next", async () => {
    const key = await createKey("zsky", { label: "csrf test" });
    const browser = new Browser();
    await browser.signIn();
    const confirm = await browser.get(`/admin/keys/${key.id}/revoke`);
    expect(confirm.status).toBe(200);
    const csrf = Browser.csrf(await confirm.text());
    const noReason = await browser.post(`/admin/keys/${key.id}/revoke`, { csrf, reason: " " });
    expect(noReason.status).toBe(400);
    expect((await json(await admin(`/keys/${key.id}`))).status).toBe("active");
    const done = await browser.post(`/admin/keys/${key.id}/revoke`, { csrf, reason: "leaked in a gist", ticket: "SEC-42" });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(`/admin/keys/${key.id}?done=revoked`);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key.key) })).status).toBe(401);
    const audit = await json(await admin(`/audit?target=${key.id}&action=key.revoke`));
    expect(audit.entries[0].actor).toBe("admin:token");
    // The refused call is on the key's page: in the chart as revoked, in the calls as invalid_credential.
    const page = await (await browser.get(`/admin/keys/${key.id}?done=revoked`)).text();
    expect(page).toContain("Revoked: no later request with this key is admitted.");
    expect(page).toContain("admitted 0");
    expect(page).toContain("revoked 1");
    expect(page).toMatch(/<td class="num">401<\/td><td>invalid_credential<\/td>/);
    expect(page).toMatch(/by <span class="mono">admin:token<\/span> — “leaked in a gist” \(ticket SEC-42\)/);
  });
});

describe("security console: headers and hosts", () => {
  it("every console response has the strict CSP and no-store, the sign-in page, errors and the stylesheet included", async () => {
    const browser = new Browser();
    const responses = [await browser.get("/admin/sign-in"), await browser.get("/admin/console.css"), await browser.get("/admin/")];
    await browser.signIn();
    responses.push(await browser.get("/admin/"), await browser.get("/admin/keys/no-such-key"), await browser.get("/admin/nope"));
    for (const response of responses) {
      const csp = response.headers.get("content-security-policy");
      expect(csp).toBe("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
    }
    expect(responses.map((r) => r.status)).toEqual([200, 200, 303, 200, 404, 404]);
    const bare = await browser.get("/admin");
    expect([bare.status, bare.headers.get("location")]).toEqual([308, "/admin/"]);
    const html = await responses[3]!.text();
    expect(html).not.toMatch(/<script|\sstyle=|\son[a-z]+=/i);
  });

  it("is served on gateway hosts only: a product host answers its own 404, and outside development only GATEWAY_HOSTS", async () => {
    const onProduct = await call("/admin/sign-in", { base: "https://api.zakgt.net" });
    expect(onProduct.status).toBe(404);
    expect(onProduct.headers.get("content-security-policy")).toBeNull();
    expect(await json(onProduct)).toEqual({ detail: "Not Found" });

    const production = { ENVIRONMENT: "production", GATEWAY_HOSTS: "gw.zgate.test" };
    const onGateway = await call("/admin/sign-in", { base: "https://gw.zgate.test", settings: production });
    expect(onGateway.status).toBe(200);
    expect(await onGateway.text()).toContain("Admin token");
    const elsewhere = await call("/admin/sign-in", { base: "https://other.zgate.test", settings: production });
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.headers.get("content-type")).toMatch(/json/);
  });
});

describe("security console: investigating a key", () => {
  it("a pasted key leads to its page (the key never in a URL or the page), with both client addresses, the chart and the audit trail", async () => {
    const { id, key } = await createKey("zsky", { label: "render farm" });
    for (const address of ["203.0.113.10", "203.0.113.10", "198.51.100.77"]) {
      expect((await call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", key), "CF-Connecting-IP": address } })).status).toBe(200);
    }
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get("/admin/")).text());
    const found = await browser.post("/admin/lookup", { csrf, key });
    expect(found.status).toBe(303);
    expect(found.headers.get("location")).toBe(`/admin/keys/${id}?done=found`);

    const page = await browser.get(found.headers.get("location")!);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toContain(key);
    expect(html).toContain("render farm");
    expect(html).toContain("Found by the pasted key. Nothing was changed.");
    // The newest address first, marked as new beside an older one.
    expect(html).toMatch(
      /class="mono new-address">198\.51\.100\.77<\/td>.*<td class="num">1<\/td>.*>203\.0\.113\.10<\/td>.*<td class="num">2<\/td>/s,
    );
    expect(html).toMatch(/<svg class="chart"[^>]*aria-label="3 calls in the last 24 hours"/);
    expect(html.match(/<rect /g)?.length).toBeGreaterThanOrEqual(1);
    expect(html).toContain("admitted 3");
    expect(html).toContain("key.create");
    expect(html).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC <span class="muted">\(\d+ s ago\)/);
  });

  it("search filters go to the admin API (paged with its cursor); one it refuses is shown beside the form as a 400", async () => {
    const account = `acct_console_${Date.now().toString(36)}`;
    const keys = [];
    for (let i = 0; i < 27; i++) keys.push(await createKey("zappway", { account, label: `batch ${i}` }));
    const browser = new Browser();
    await browser.signIn();
    const first = await (await browser.get(`/admin/?account=${account}`)).text();
    expect(first.match(/href="\/admin\/keys\/key_/g)?.length).toBe(25);
    const next = /href="(\/admin\/\?account=[^"]+&amp;cursor=[^"]+)"/.exec(first)![1]!.replace(/&amp;/g, "&");
    const second = await (await browser.get(next)).text();
    expect(second.match(/href="\/admin\/keys\/key_/g)?.length).toBe(2);
    expect(second).toContain("End of list.");

    const byLast4 = await (await browser.get(`/admin/?account=${account}&last4=${encodeURIComponent(keys[3]!.key.slice(-4))}`)).text();
    expect(byLast4).toContain(`/admin/keys/${keys[3]!.id}`);
    const today = new Date().toISOString().slice(0, 10);
    expect(
      (await (await browser.get(`/admin/?account=${account}&created_after=${today}`)).text()).match(/href="\/admin\/keys\/key_/g)?.length,
    ).toBe(25);
    expect(await (await browser.get(`/admin/?account=${account}&created_after=2999-01-01`)).text()).toContain("No key matches.");
    const refused = await browser.get("/admin/?last4=abc");
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("last4");
  });

  it("an unknown pasted key is a 404 page that does not echo it", async () => {
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get("/admin/")).text());
    const response = await browser.post("/admin/lookup", { csrf, key: "zsky_live_notarealkey123" });
    expect(response.status).toBe(404);
    const html = await response.text();
    expect(html).toContain("No zgate key matches");
    expect(html).not.toContain("notarealkey123");
  });
});

describe("security console: revoke-leaked and Cloudflare Access", () => {
  it("revoke-leaked asks for the key again, refuses another key's, then lists the whole chain with the reason kept", async () => {
    const old = await createKey("zsky", { label: "leaky" });
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) }));
    const other = await createKey("zsky");
    const browser = new Browser();
    await browser.signIn();
    const confirm = await (await browser.get(`/admin/keys/${old.id}/revoke-leaked`)).text();
    expect(confirm).toMatch(/name="invalidate_result_links" value="1" checked/);
    const csrf = Browser.csrf(confirm);
    const wrongKey = await browser.post(`/admin/keys/${old.id}/revoke-leaked`, { csrf, key: other.key, reason: "gist" });
    expect(wrongKey.status).toBe(400);
    expect(await wrongKey.text()).toContain("The pasted key is not this key.");
    expect((await json(await admin(`/keys/${other.id}`))).status).toBe("active");

    const done = await browser.post(`/admin/keys/${old.id}/revoke-leaked`, {
      csrf,
      key: old.key,
      reason: "found in a public gist",
      ticket: "SEC-7",
      invalidate_result_links: "1",
    });
    expect(done.status).toBe(200);
    const html = await done.text();
    expect(html).not.toContain(old.key);
    const text = pageText(html);
    expect(text).toContain(`Revoked now: ${rotated.key_id}.`);
    expect(text).toContain(`${old.id} was already revoked before this (by key:${old.id})`);
    expect(html).toContain(`/admin/keys/${rotated.key_id}`);
    expect(html).toContain("successor_of_leaked");
    for (const key of [old.key, rotated.key]) expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) })).status).toBe(401);
    expect(await json(await admin(`/keys/${rotated.key_id}`))).toMatchObject({
      revoke_reason: "found in a public gist",
      revoke_ticket: "SEC-7",
    });
    const page = await (await browser.get(`/admin/keys/${old.id}`)).text();
    expect(page).toContain("found in a public gist");
    expect(page).toContain("SEC-7");
  });

  it("revoke-leaked of a rolled key says exactly what happened: revoked now, the successor kept and working, the links cut under it", async () => {
    const old = await createKey("zsky", { label: "rolled then leaked" });
    const { response } = await finishedImage(zskyClient(old.key, roomy), "a lighthouse at dusk");
    const url = (await json(response)).result_url as string;
    const successor = await json(await admin(`/keys/${old.id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get(`/admin/keys/${old.id}/revoke-leaked`)).text());
    const done = await browser.post(`/admin/keys/${old.id}/revoke-leaked`, {
      csrf,
      key: old.key,
      reason: "pasted in a forum",
      invalidate_result_links: "1",
    });
    expect(done.status).toBe(200);
    const text = pageText(await done.text());
    expect(text).toContain(`Revoked now: ${old.id}. Every request with it is refused (401) from now on.`);
    expect(text).toContain(`Not revoked: ${successor.id} still works. An admin rolled ${old.id} to it`);
    expect(text).toContain(
      `Result links refused: 1 stored result (the very next download of each is 403); 1 under the kept key ${successor.id}, since the leaked key's jobs and polls went to it`,
    );
    expect(text).not.toMatch(/revoked too|issue a new key|Create replacement key/);
    // What the page says is what the gateway does.
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", old.key) })).status).toBe(401);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", successor.key) })).status).toBe(200);
    expect((await fetchUrl(url)).status).toBe(403);
    const entry = (await json(await admin(`/audit?target=${old.id}&action=key.revoke_leaked`))).entries[0];
    expect(entry.detail).toMatchObject({ result_links_revoked: 1, result_links_revoked_under: { [successor.id]: 1 } });
  });

  it("revoke-leaked of a plain key without cutting links says so, and offers a replacement", async () => {
    const leaked = await createKey("zsky", { label: "alone" });
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get(`/admin/keys/${leaked.id}/revoke-leaked`)).text());
    const done = await browser.post(`/admin/keys/${leaked.id}/revoke-leaked`, { csrf, key: leaked.key, reason: "gist" });
    const html = await done.text();
    const text = pageText(html);
    expect(text).toContain(`Revoked now: ${leaked.id}.`);
    expect(text).toContain("Result links were not refused (not asked)");
    expect(text).toContain("No key of this chain works any more: the customer needs a new one.");
    expect(html).toContain(`href="/admin/keys/${leaked.id}/replace"`);
  });

  it("behind Access: no sign-in, the CSRF token is bound to the Access JWT, and the audit names the Access email", async () => {
    const access = {
      ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com",
      ACCESS_AUD: "aud-tag-123",
      ACCESS_JWKS_URL: sims.jwksUrl, // the simulator's key set stands in for Access's certs
    };
    const claims = { iss: "https://zgate-sec.cloudflareaccess.com", aud: "aud-tag-123" };
    const jwt = await mintToken({ ...claims, email: "sec@zakgt.test" });
    const otherJwt = await mintToken({ ...claims, email: "mallory@zakgt.test" });
    const key = await createKey("zappway");
    const asSec = new Browser({ settings: access, headers: { "Cf-Access-Jwt-Assertion": jwt } });
    const confirm = await asSec.get(`/admin/keys/${key.id}/revoke`);
    expect(confirm.status).toBe(200);
    expect(confirm.headers.get("set-cookie")).toBeNull();
    const csrf = Browser.csrf(await confirm.text());
    const asOther = new Browser({ settings: access, headers: { "Cf-Access-Jwt-Assertion": otherJwt } });
    expect((await asOther.post(`/admin/keys/${key.id}/revoke`, { csrf, reason: "x" })).status).toBe(403);
    const done = await asSec.post(`/admin/keys/${key.id}/revoke`, { csrf, reason: "offboarding" });
    expect(done.status).toBe(303);
    const audit = await json(await admin(`/audit?target=${key.id}&action=key.revoke`));
    expect(audit.entries[0]).toMatchObject({ actor: "admin:sec@zakgt.test", detail: expect.objectContaining({ reason: "offboarding" }) });
    // A deployment with Access only: the console works through it, and there is no token sign-in.
    const accessOnly = { ...access, ADMIN_TOKEN: undefined };
    expect((await new Browser({ settings: accessOnly, headers: { "Cf-Access-Jwt-Assertion": jwt } }).get("/admin/")).status).toBe(200);
    const noSignIn = await new Browser({ settings: accessOnly }).get("/admin/sign-in");
    expect(noSignIn.status).toBe(503);
    expect(await noSignIn.text()).toContain("open the console through Cloudflare Access");
    // An Access JWT that does not verify gets the admin API's 401, as a page.
    const forged = new Browser({ settings: access, headers: { "Cf-Access-Jwt-Assertion": `${jwt.slice(0, -4)}AAAA` } });
    const refused = await forged.get("/admin/");
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("Invalid admin credentials");
  });
});

describe("security console: lift suspension", () => {
  it("a ZSky key's page lifts its suspension with a CSRF-checked post, audited as admin:token", async () => {
    const key = await createKey("zsky");
    const browser = new Browser();
    await browser.signIn();
    const page = await (await browser.get(`/admin/keys/${key.id}`)).text();
    expect(page).toContain(`action="/admin/keys/${key.id}/lift-suspension"`);
    const lifted = await browser.post(`/admin/keys/${key.id}/lift-suspension`, { csrf: Browser.csrf(page) });
    expect(lifted.status).toBe(303);
    expect(lifted.headers.get("location")).toBe(`/admin/keys/${key.id}?done=lifted`);
    const audit = (await json(await admin(`/audit?target=${key.id}&action=key.lift_suspension`))).entries;
    expect(audit[0]).toMatchObject({ actor: "admin:token", detail: { was_suspended: false } });
    // Other products have no safety suspension: no such button.
    const zappway = await createKey("zappway");
    expect(await (await browser.get(`/admin/keys/${zappway.id}`)).text()).not.toContain("lift-suspension");
  });
});

describe("security console: roll", () => {
  it("refuses a bad grace period or no reason, then shows the successor's plaintext once; the old key works until the grace ends", async () => {
    const old = await createKey("zappway", { label: "nightly export" });
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get(`/admin/keys/${old.id}/roll`)).text());
    for (const [form, message] of [
      [{ expire_old_in_seconds: "60" }, "Give a reason."],
      [{ expire_old_in_seconds: "", reason: "r" }, "expire_old_in_seconds"],
      [{ expire_old_in_seconds: "-1", reason: "r" }, "expire_old_in_seconds"],
      [{ expire_old_in_seconds: "1.5", reason: "r" }, "expire_old_in_seconds"],
      [{ expire_old_in_seconds: String(30 * 86_400 + 1), reason: "r" }, "expire_old_in_seconds"],
    ] as [Record<string, string>, string][]) {
      const refused = await browser.post(`/admin/keys/${old.id}/roll`, { csrf, ...form });
      expect(refused.status, JSON.stringify(form)).toBe(400);
      expect(await refused.text()).toContain(message);
    }
    expect((await json(await admin(`/keys?account=${old.account}`))).keys).toHaveLength(1);

    const rolled = await browser.post(`/admin/keys/${old.id}/roll`, {
      csrf,
      expire_old_in_seconds: "3600",
      reason: "customer offboarding",
    });
    expect(rolled.status).toBe(200);
    const html = await rolled.text();
    const successor = /class="mono secret">([^<]+)</.exec(html)![1]!;
    expect(successor).toMatch(/^zw_live_/);
    const keys = (await json(await admin(`/keys?account=${old.account}`))).keys;
    const created = keys.find((k: { id: string }) => k.id !== old.id);
    expect(created).toMatchObject({ replaces: old.id, label: "nightly export" });
    expect(html).toContain(`/admin/keys/${created.id}`);
    for (const key of [old.key, successor])
      expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    // A revoked key has nothing to roll: the admin API's 409, on the confirmation page.
    await admin(`/keys/${created.id}/revoke`, { json: {} });
    const conflict = await browser.post(`/admin/keys/${created.id}/roll`, { csrf, expire_old_in_seconds: "0", reason: "again" });
    expect(conflict.status).toBe(409);
    expect(await conflict.text()).toContain("revoked or expired");
    // The successor's page never shows the plaintext again.
    expect(await (await browser.get(`/admin/keys/${created.id}`)).text()).not.toContain(successor);
    const audit = (await json(await admin(`/audit?target=${old.id}`))).entries;
    expect(audit[0]).toMatchObject({ actor: "admin:token", detail: expect.objectContaining({ reason: "customer offboarding" }) });
  });
});

describe("security console: whatever the key's state, revoke as leaked; once it cannot be rolled, a replacement", () => {
  it("a key rolled with 0 s grace still offers revoke as leaked and a replacement; an active one rolls; a revoked one is not revoked again", async () => {
    const key = await createKey("zsky", { label: "ci deploy" });
    const browser = new Browser();
    await browser.signIn();
    const actionsOf = async (id: string) =>
      [...(await (await browser.get(`/admin/keys/${id}`)).text()).matchAll(/href="\/admin\/keys\/[^/"]+\/([a-z-]+)"/g)].map((m) => m[1]);
    expect(await actionsOf(key.id)).toEqual(["revoke", "revoke-leaked", "roll"]);
    const rolled = await json(await admin(`/keys/${key.id}/roll`, { json: { expire_old_in_seconds: 0 } }));
    expect(await actionsOf(key.id)).toEqual(["revoke", "revoke-leaked", "replace"]);
    await admin(`/keys/${rolled.id}/revoke`, { json: { reason: "gone" } });
    expect(await actionsOf(rolled.id)).toEqual(["revoke-leaked", "replace"]);
    const confirm = await (await browser.get(`/admin/keys/${key.id}/revoke-leaked`)).text();
    expect(confirm).toContain("This key is expired already: this still revokes every key rotated from it");
  });

  it("a replacement asks for a reason, then shows the new key once; a key still active is the admin API's 409 on the page", async () => {
    const key = await createKey("zappway", { label: "nightly export", scopes: ["agents"] });
    const browser = new Browser();
    await browser.signIn();
    const form = await browser.get(`/admin/keys/${key.id}/replace`);
    expect(form.status).toBe(200);
    const csrf = Browser.csrf(await form.text());
    const active = await browser.post(`/admin/keys/${key.id}/replace`, { csrf, reason: "customer asked" });
    expect(active.status).toBe(409);
    expect(await active.text()).toContain("This key is still active: roll it instead");

    await admin(`/keys/${key.id}/revoke`, { json: { reason: "leaked" } });
    expect((await browser.post(`/admin/keys/${key.id}/replace`, { csrf, reason: " " })).status).toBe(400);
    const done = await browser.post(`/admin/keys/${key.id}/replace`, { csrf, reason: "leaked, customer needs a key", ticket: "SEC-3" });
    expect(done.status).toBe(200);
    const html = await done.text();
    const secret = /class="mono secret">([^<]+)</.exec(html)![1]!;
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", secret) })).status).toBe(200);
    const replacement = (await json(await admin(`/keys?account=${key.account}&status=active`))).keys[0];
    expect(replacement).toMatchObject({ replaces: key.id, label: "nightly export", scopes: ["agents"] });
    expect(html).toContain(`/admin/keys/${replacement.id}`);
    expect(await (await browser.get(`/admin/keys/${replacement.id}`)).text()).not.toContain(secret);
    expect((await json(await admin(`/audit?target=${key.id}&action=key.replace`))).entries[0]).toMatchObject({
      actor: "admin:token",
      detail: { replaced_by: replacement.id, reason: "leaked, customer needs a key", ticket: "SEC-3" },
    });
  });
});

describe("security console: create key", () => {
  it("creates a key through the admin API, audited under who signed in, the plaintext shown once; a refusal keeps what was typed", async () => {
    const account = `acct_console_new_${Date.now().toString(36)}`;
    const browser = new Browser();
    await browser.signIn();
    const form = await browser.get(`/admin/keys/new?account=${account}`);
    const page = await form.text();
    expect(page).toContain(`name="account" required="" maxlength="128" value="${account}"`);
    const csrf = Browser.csrf(page);
    const refused = await browser.post("/admin/keys/new", { csrf, product: "zsky", account, label: "x".repeat(101) });
    expect(refused.status).toBe(400);
    const again = await refused.text();
    expect(again).toContain("label");
    expect(again).toContain(`value="${account}"`);
    const testMode = await browser.post("/admin/keys/new", { csrf, product: "zsky", account, mode: "test" });
    expect(testMode.status).toBe(400);

    const created = await browser.post("/admin/keys/new", {
      csrf,
      product: "zsky",
      account,
      label: "render farm",
      scopes: "images, usage",
      plan: "",
      expires_on: "",
    });
    expect(created.status).toBe(200);
    const secret = /class="mono secret">([^<]+)</.exec(await created.text())![1]!;
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", secret) })).status).toBe(200);
    const [key] = (await json(await admin(`/keys?account=${account}`))).keys;
    expect(key).toMatchObject({ product: "zsky", label: "render farm", scopes: ["images", "usage"], expires_at: null });
    expect((await json(await admin(`/audit?target=${key.id}`))).entries[0]).toMatchObject({ actor: "admin:token", action: "key.create" });
  });
});

describe("security console: calls by address and time, and a key's calls as a file", () => {
  it("the calls page finds every key an address used across accounts, and an account's calls; a refused filter is a 400 beside the form", async () => {
    const address = someIp();
    const first = await createKey("zsky", { label: "first" });
    const second = await createKey("zappway", { label: "second" });
    expect((await call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", first.key), "CF-Connecting-IP": address } })).status).toBe(200);
    const agents = { headers: { ...keyHeaders("zappway", second.key), "CF-Connecting-IP": address } };
    expect((await call("/zappway/api/v1/agents", agents)).status).toBe(200);
    const browser = new Browser();
    await browser.signIn();
    // The key page links each of its addresses to the keys that address used.
    const keyPage = await (await browser.get(`/admin/keys/${first.id}`)).text();
    expect(keyPage).toContain(`href="/admin/calls?address=${address}"`);
    const everywhere = await browser.get(`/admin/calls?address=${address}`);
    expect(everywhere.status).toBe(200);
    const html = await everywhere.text();
    const keysTable = html.slice(html.indexOf("<h2>Keys</h2>"), html.indexOf("<h2>Calls</h2>"));
    expect([...keysTable.matchAll(/href="\/admin\/keys\/(key_\w+)"/g)].map((m) => m[1])).toEqual([second.id, first.id]);
    expect(pageText(keysTable)).toContain(`zappway / ${second.account}`);
    const inAccount = await (await browser.get(`/admin/calls?product=zsky&account=${first.account}&since=2020-01-01T00:00`)).text();
    expect(inAccount).toContain(`/admin/keys/${first.id}`);
    expect(inAccount).not.toContain(`/admin/keys/${second.id}`);
    const refused = await browser.get(`/admin/calls?address=${address}&since=2020-01-01T00:00`);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("at most 24 hours back");
  });

  it("a key's calls download as CSV through the console, formulas escaped, audited under who signed in", async () => {
    const { id, key } = await createKey("zsky");
    expect((await call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", key), "User-Agent": "=cmd|' /C calc'!A0" } })).status).toBe(
      200,
    );
    expect((await call("/zsky/v1/usage", { headers: { ...keyHeaders("zsky", key), "User-Agent": "sdk/1.0" } })).status).toBe(200);
    const browser = new Browser();
    await browser.signIn();
    expect(await (await browser.get(`/admin/keys/${id}`)).text()).toContain(`action="/admin/keys/${id}/export"`);
    const download = await browser.get(`/admin/keys/${id}/export?format=csv&since=&until=`);
    expect(download.status).toBe(200);
    expect(download.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(download.headers.get("content-disposition")).toBe(`attachment; filename="${id}-calls.csv"`);
    expect(download.headers.get("content-security-policy")).toContain("default-src 'none'");
    const rows = (await download.text()).split("\r\n");
    expect(rows).toHaveLength(4);
    expect(rows[1]).toContain('"sdk/1.0"');
    expect(rows[2]).toContain(`"'=cmd|' /C calc'!A0"`);
    const refused = await browser.get(`/admin/keys/${id}/export?format=xml`);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("format");
    expect((await json(await admin(`/audit?target=${id}&action=key.export_usage`))).entries[0]).toMatchObject({
      actor: "admin:token",
      detail: { format: "csv", calls: 2 },
    });
    expect((await browser.get("/admin/keys/no_such_key/export?format=csv")).status).toBe(404);
  });
});

describe("security console: leak intake", () => {
  it("lists every key revoked as leaked, with who reported it and why, newest first", async () => {
    const old = await createKey("zsky", { label: "leak intake" });
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) }));
    expect((await admin("/keys/revoke-leaked", { json: { key: old.key, reason: "pasted in a forum" } })).status).toBe(200);
    const browser = new Browser();
    await browser.signIn();
    const page = await browser.get("/admin/leaks");
    expect(page.status).toBe(200);
    const rows = [...(await page.text()).matchAll(/<tr>(.*?)<\/tr>/gs)].map((m) => m[1]!);
    const ours = rows.filter((r) => r.includes(old.id) || r.includes(rotated.key_id));
    expect(ours).toHaveLength(2);
    expect(ours[0]).toMatch(new RegExp(`admin:token.*${rotated.key_id}.*successor_of_leaked.*pasted in a forum`, "s"));
    expect(ours[1]).toMatch(new RegExp(`admin:token.*${old.id}.*<td>leaked</td>.*pasted in a forum`, "s"));
  });

  it("a public report shows as report:public with where the key was found (as text, never a link)", async () => {
    const leaked = await createKey("zappway");
    const url = "https://paste.example/raw/abc123";
    const reported = await call("/security/v1/keys/report", {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": someIp() },
      body: JSON.stringify({ keys: [leaked.key], url }),
    });
    expect(reported.status).toBe(202);
    const browser = new Browser();
    await browser.signIn();
    const html = await (await browser.get("/admin/leaks")).text();
    const row = [...html.matchAll(/<tr>(.*?)<\/tr>/gs)].map((m) => m[1]!).find((r) => r.includes(leaked.id));
    expect(row).toMatch(new RegExp(`report:public.*${leaked.id}.*<td>leaked</td>.*<td class="mono">${url}</td>`, "s"));
    expect(html).not.toContain(`href="${url}"`);
    expect(html).not.toContain(leaked.key);
  });
});

describe("security console: bad input", () => {
  it("answers a page with the admin API's status and message, never a 500 or a stack trace", async () => {
    const key = await createKey("zsky");
    const browser = new Browser();
    await browser.signIn();
    const csrf = Browser.csrf(await (await browser.get("/admin/")).text());
    const cases: [Promise<Response>, number, string][] = [
      [browser.get("/admin/keys/no_such_key"), 404, "Key not found"],
      [browser.get(`/admin/keys/${"k".repeat(65)}`), 400, "id"],
      [browser.get(`/admin/keys/${key.id}?cursor=not-a-cursor`), 400, "Invalid cursor"],
      [browser.get("/admin/?cursor=%7B%7D"), 400, "Invalid cursor"],
      [browser.get("/admin/audit?cursor=zzz"), 400, "Invalid cursor"],
      [browser.get("/admin/?status=gone"), 400, "status"],
      [browser.post("/admin/keys/no_such_key/revoke", { csrf, reason: "x" }), 404, "Key not found"],
      [browser.post("/admin/lookup", { csrf, key: "" }), 400, "key"],
      [browser.post(`/admin/keys/${key.id}/roll`, { csrf, reason: "r", expire_old_in_seconds: "soon" }), 400, "expire_old_in_seconds"],
      [browser.get("/admin/keys/no_such_key/roll"), 404, "Key not found"],
    ];
    for (const [response, status, text] of cases) {
      const r = await response;
      expect(r.status, text).toBe(status);
      expect(r.headers.get("content-type")).toMatch(/^text\/html/);
      const html = await r.text();
      expect(html).toContain(text);
      expect(html).not.toMatch(/at \w+ \(|Internal error/);
    }
    expect((await json(await admin(`/keys/${key.id}`))).status).toBe("active");
  });
});
