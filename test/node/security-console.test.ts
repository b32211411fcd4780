import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, noBrowser } from "./chromium";
import { sharedDevGateway } from "./dev-gateway";

const root = new URL("../..", import.meta.url).pathname;
if (noBrowser) console.warn("The security console browser test is skipped: install the Debian package chromium to run it.");

const shots = join(root, "test-results");

/**
 * The security console in a real headless Chromium, against the run's gateway
 * (test/node/gateway-setup.ts): sign-in, a forged cross-origin form refused, the leaked-key
 * story end to end, a roll with a grace period, the audit view. Screenshots of the search,
 * key and audit pages go to test-results/ (docs/screenshots/ keeps copies, linked from
 * README and docs/console.md).
 */
describe.skipIf(noBrowser)("security console in a browser", () => {
  let base = "";
  let adminToken = "";
  let browser: BrowserContext;
  let page: Page;
  let attacker: Server;
  let attackerBase = "";
  // Anything the console's own CSP blocked (an inline style, a stray script) shows up here.
  const cspViolations: string[] = [];
  const profile = mkdtempSync(join(tmpdir(), "zgate-console-chromium-"));

  let gatewayLog: () => Promise<string>;
  /**
   * A request to the gateway that fails, naming itself and with what the gateway printed,
   * if it has no answer within 30 s: a fetch has no deadline of its own, and a request that
   * hung once in CI ran the test into its timeout with nothing said of which one.
   */
  const request = async (path: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      if ((err as Error).name !== "TimeoutError") throw err;
      throw new Error(
        `no answer to ${init.method ?? "GET"} ${path} within 30 s; the gateway printed:\n${(await gatewayLog()).slice(-4000)}`,
      );
    }
  };
  const adminApi = async (path: string, body?: unknown) => {
    const response = await request(`/admin/v1${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  const zsky = (key: string, address: string) =>
    request("/zsky/v1/usage", { headers: { "X-API-Key": key, "CF-Connecting-IP": address } }).then((r) => r.status);
  const until = async (what: string, check: () => Promise<boolean>, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  beforeAll(async () => {
    const gateway = await sharedDevGateway();
    ({ base, adminToken } = gateway);
    gatewayLog = () => gateway.log();
    // Another site's page with a form aimed at the console: what a CSRF attack sends.
    attacker = createServer((req, res) => {
      const target = new URL(req.url!, "http://x").searchParams.get("target")!;
      res.writeHead(200, { "Content-Type": "text/html" });
      res.end(
        `<form method="post" action="${target}"><input name="reason" value="forged"><input name="csrf" value="${"0".repeat(64)}"><button id="go">win a prize</button></form>`,
      );
    });
    await new Promise<void>((r) => attacker.listen(0, "127.0.0.1", r));
    attackerBase = `http://127.0.0.1:${(attacker.address() as { port: number }).port}`;
    // A fresh profile of its own (playwright takes it as the persistent context's directory).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 1100 },
      // The console has no script: everything here works with JavaScript off.
      javaScriptEnabled: false,
      args: CHROMIUM_ARGS,
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("console", (message) => {
      if (message.text().includes("Content Security Policy")) cspViolations.push(message.text());
    });
    mkdirSync(shots, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    attacker?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  const shot = async (name: string) => {
    const path = join(shots, name);
    await page.screenshot({ path, fullPage: true });
    expect(statSync(path).size).toBeGreaterThan(10_000);
  };

  it("signs in with the admin token, refuses a forged form from another page, and walks a leaked key from paste to 401 and audit", async () => {
    const leaked = await adminApi("/keys", { product: "zsky", account: "acct_render_farm", label: "render farm CI" });
    expect(leaked.status).toBe(201);
    const { id, key } = leaked.body as { id: string; key: string };
    // The customer's address, then the attacker's.
    expect(await zsky(key, "203.0.113.10")).toBe(200);
    expect(await zsky(key, "203.0.113.10")).toBe(200);
    expect(await zsky(key, "198.51.100.77")).toBe(200);

    await page.goto(`${base}/admin/`);
    expect(new URL(page.url()).pathname).toBe("/admin/sign-in");
    await page.fill('input[name="token"]', "wrong-token-wrong-token-wrong");
    await page.click('button[type="submit"]');
    expect(await page.textContent("main")).toContain("not the admin token of this deployment");
    await page.fill('input[name="token"]', adminToken);
    await page.click('button[type="submit"]');
    expect(new URL(page.url()).pathname).toBe("/admin/");
    const cookies = await browser.cookies();
    expect(cookies).toEqual([
      expect.objectContaining({ name: "__Secure-zgate_console", httpOnly: true, secure: true, sameSite: "Strict" }),
    ]);

    // A page of another origin posts a revoke with the browser's own cookie: refused, key untouched.
    await page.goto(`${attackerBase}/?target=${encodeURIComponent(`${base}/admin/keys/${id}/revoke`)}`);
    await page.click("#go");
    await page.waitForLoadState();
    expect(await page.textContent("main")).toContain("CSRF");
    expect((await adminApi(`/keys/${id}`)).body.status).toBe("active");

    // Usage reaches D1 in batches (USAGE_FLUSH_MS): wait for the two addresses.
    await until("both client addresses in the usage log", async () => (await adminApi(`/keys/${id}/usage`)).body.addresses?.length === 2);

    await page.goto(`${base}/admin/?account=acct_render_farm`);
    await page.fill('input[name="key"]', key);
    await shot("console-search.png");
    await page.click('form[action="/admin/lookup"] button');
    expect(new URL(page.url()).pathname).toBe(`/admin/keys/${id}`);
    expect(await page.content()).not.toContain(key);
    const addresses = await page.$$eval("td.mono", (cells) => cells.map((c) => c.textContent));
    expect(addresses).toEqual(expect.arrayContaining(["203.0.113.10", "198.51.100.77"]));
    expect(await page.textContent(".new-address")).toBe("198.51.100.77");
    expect(await page.getAttribute("svg.chart", "aria-label")).toBe("3 calls in the last 24 hours");
    await shot("console-key.png");

    await page.click("text=Revoke…");
    await page.click("button.danger"); // no reason: the browser's own check keeps the form
    expect(new URL(page.url()).pathname).toBe(`/admin/keys/${id}/revoke`);
    await page.fill('textarea[name="reason"]', "key pushed to a public repository");
    await page.fill('input[name="ticket"]', "SEC-1234");
    await page.click("button.danger");
    expect(new URL(page.url()).pathname).toBe(`/admin/keys/${id}`);
    expect(await page.textContent(".status")).toBe("revoked");
    expect(await page.textContent("dl.facts")).toMatch(/by admin:token — “key pushed to a public repository” \(ticket SEC-1234\)/);
    expect(await zsky(key, "198.51.100.77")).toBe(401);

    await page.click("text=Audit log");
    await page.fill('input[name="target"]', id);
    await page.click('form[action="/admin/audit"] button');
    const rows = await page.$$eval("tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(rows[0]).toEqual(expect.arrayContaining(["admin:token", "key.revoke", id]));
    expect(rows[0]!.join(" ")).toContain('"reason":"key pushed to a public repository"');
    // Pasting the key to find it is in the trail too (key.lookup), between its creation and its revocation.
    expect(rows.map((r) => r[2])).toEqual(["key.revoke", "key.lookup", "key.create"]);
    await shot("console-audit.png");
    expect(cspViolations).toEqual([]);
  });

  /**
   * The README's leaked-key runbook as a new operator would do it in the console, from the
   * sign-in page with the leaked key in hand: every step after signing in is a link or a
   * form on the page, never a typed URL, and at most 4 forms are sent (sign-in included).
   */
  const runbook = async (leakedKey: string, steps: () => Promise<void>) => {
    const posts: string[] = [];
    const navigations: { url: string; site: Promise<string | undefined> }[] = [];
    const watch = (request: import("playwright-core").Request) => {
      if (!request.isNavigationRequest()) return;
      if (request.method() === "POST") posts.push(new URL(request.url()).pathname);
      navigations.push({ url: request.url(), site: request.allHeaders().then((h) => h["sec-fetch-site"]) });
    };
    await browser.clearCookies();
    await page.goto(`${base}/admin/`);
    page.on("request", watch);
    await page.fill('input[name="token"]', adminToken);
    await page.click('button[type="submit"]');
    await page.fill('form[action="/admin/lookup"] input[name="key"]', leakedKey);
    await page.click('form[action="/admin/lookup"] button');
    await steps();
    page.off("request", watch);
    expect(posts.length, posts.join(", ")).toBeLessThanOrEqual(4);
    // Every page after the first was reached from the one before it (a typed URL is `none`).
    expect(await Promise.all(navigations.map((n) => n.site))).toEqual(navigations.map(() => "same-origin"));
    expect(cspViolations).toEqual([]);
    return posts;
  };

  it("leaked-key runbook, roll first: roll with 0 s grace, then revoke the old key as leaked; the successor keeps working", async () => {
    const leaked = await adminApi("/keys", { product: "zsky", account: "acct_runbook_roll", label: "ci deploy" });
    const { id, key } = leaked.body as { id: string; key: string };
    let successor = "";
    const posts = await runbook(key, async () => {
      expect(new URL(page.url()).pathname).toBe(`/admin/keys/${id}`);
      await page.click("text=Roll with grace period…");
      await page.fill('input[name="expire_old_in_seconds"]', "0");
      await page.fill('textarea[name="reason"]', "pushed to a public repo");
      await page.fill('input[name="ticket"]', "SEC-1");
      await page.click("button.danger");
      successor = (await page.textContent(".secret"))!.trim();
      expect(await page.textContent("main")).toContain("stopped working at");
      // The old key has ended, and is still one click from being revoked as leaked.
      await page.click("text=Revoke the old key as leaked…");
      await page.fill('input[name="key"]', key);
      await page.fill('textarea[name="reason"]', "pushed to a public repo");
      await page.fill('input[name="ticket"]', "SEC-1");
      await page.click("button.danger");
      const text = (await page.textContent("main"))!;
      expect(text).toContain(`Revoked now: ${id}.`);
      expect(text).toMatch(/Not revoked: key_\w+ still works\. An admin rolled/);
      expect(text).not.toContain("revoked too");
    });
    expect(posts).toEqual(["/admin/sign-in", "/admin/lookup", `/admin/keys/${id}/roll`, `/admin/keys/${id}/revoke-leaked`]);
    expect(successor).toMatch(/^zsky_live_/);
    expect(await zsky(key, "203.0.113.30")).toBe(401);
    expect(await zsky(successor, "203.0.113.30")).toBe(200);
    const audit = await adminApi(`/audit?target=${id}`);
    const actions = audit.body.entries.map((e: { action: string }) => e.action).filter((a: string) => a !== "key.lookup");
    expect(actions).toEqual(["key.revoke_leaked", "key.roll", "key.create"]);
  });

  it("leaked-key runbook, revoke first: revoke as leaked, then issue a replacement from the result page", async () => {
    const leaked = await adminApi("/keys", { product: "zsky", account: "acct_runbook_revoke", label: "ci deploy" });
    const { id, key } = leaked.body as { id: string; key: string };
    let replacement = "";
    const posts = await runbook(key, async () => {
      await page.click("text=Revoke as leaked…");
      await page.fill('input[name="key"]', key);
      await page.fill('textarea[name="reason"]', "pushed to a public repo");
      await page.click("button.danger");
      expect(await page.textContent("main")).toContain("No key of this chain works any more: the customer needs a new one.");
      await page.click("text=Create replacement key…");
      await page.fill('textarea[name="reason"]', "replacement for the leaked key");
      await page.click('button[type="submit"]:has-text("Confirm")');
      replacement = (await page.textContent(".secret"))!.trim();
      await page.click("text=New key's page");
      expect(await page.textContent("dl.facts")).toContain(`Replaces${id}`);
    });
    expect(posts).toEqual(["/admin/sign-in", "/admin/lookup", `/admin/keys/${id}/revoke-leaked`, `/admin/keys/${id}/replace`]);
    expect(await zsky(key, "203.0.113.31")).toBe(401);
    expect(await zsky(replacement, "203.0.113.31")).toBe(200);
    const replaced = (await adminApi(`/keys?account=acct_runbook_revoke&status=active`)).body.keys;
    expect(replaced).toEqual([expect.objectContaining({ replaces: id, label: "ci deploy" })]);
  });

  it("from a key's page: every key its new address used, and the key's calls downloaded as CSV", async () => {
    const created = await adminApi("/keys", { product: "zsky", account: "acct_investigate", label: "nightly" });
    const { id, key } = created.body as { id: string; key: string };
    const other = (await adminApi("/keys", { product: "zsky", account: "acct_elsewhere" })).body as { id: string; key: string };
    for (const [k, address] of [
      [key, "203.0.113.40"],
      [key, "198.51.100.41"],
      [other.key, "198.51.100.41"],
    ] as const) {
      expect(await zsky(k, address)).toBe(200);
    }
    await until("both keys' calls in the usage log", async () => {
      const found = await adminApi("/calls?address=198.51.100.41");
      return found.body.keys?.length === 2;
    });
    await browser.clearCookies();
    await page.goto(`${base}/admin/keys/${id}`);
    await page.fill('input[name="token"]', adminToken);
    await page.click('button[type="submit"]');
    await page.goto(`${base}/admin/keys/${id}`);
    await page.click('a[href="/admin/calls?address=198.51.100.41"]');
    const keys = await page.$$eval("h2 + table tbody tr td:first-child a", (links) => links.map((a) => a.getAttribute("href")));
    expect(keys.sort()).toEqual([`/admin/keys/${id}`, `/admin/keys/${other.id}`].sort());
    await page.goBack();
    await page.selectOption('select[name="format"]', "csv");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('form[action$="/export"] button')]);
    expect(download.suggestedFilename()).toBe(`${id}-calls.csv`);
    const text = readFileSync((await download.path())!, "utf8");
    const rows = text.trimEnd().split("\r\n");
    expect(rows[0]).toBe("time,key_id,method,path,status,outcome,client_address,country,asn,user_agent,request_id");
    expect(rows.slice(1).map((row) => row.split(",")[6])).toEqual(['"198.51.100.41"', '"203.0.113.40"']);
    expect(cspViolations).toEqual([]);
  });

  it("rolls a key with a short grace period: the old key works until it ends, the new one from the start", async () => {
    const created = await adminApi("/keys", { product: "zsky", account: "acct_roll", label: "nightly export" });
    const { id, key } = created.body as { id: string; key: string };
    await page.goto(`${base}/admin/keys/${id}`);
    await page.click("text=Roll with grace period…");
    await page.fill('input[name="expire_old_in_seconds"]', "5");
    await page.fill('textarea[name="reason"]', "customer rotation after offboarding");
    await page.click("button.danger");
    const successor = (await page.textContent(".secret"))!.trim();
    expect(successor).toMatch(/^zsky_live_/);
    // The page says when the old key stops; the guard refuses it from then on.
    const endsAt = Date.parse((await page.getAttribute("main p time", "datetime"))!);
    expect(endsAt - Date.now()).toBeLessThanOrEqual(5_000);
    expect(await zsky(key, "203.0.113.20")).toBe(200);
    expect(await zsky(successor, "203.0.113.20")).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, endsAt + 500 - Date.now())));
    expect(await zsky(key, "203.0.113.20")).toBe(401);
    expect(await zsky(successor, "203.0.113.20")).toBe(200);
  });
});
