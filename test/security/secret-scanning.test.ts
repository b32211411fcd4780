import { afterEach, describe, expect, it, vi } from "vitest";
import { generateKey, hashKey } from "../../src/keys/key-format";
import { toHex } from "../../src/util/hex";
import { admin, burst, call, createKey, json, keyHeaders } from "../helpers";
import { program, programKey, report, sign } from "./scanner-program";

const WEBHOOK_SECRET = "leak-webhook-secret-0123456789abcdef";

async function setup() {
  const scanner = program();
  const key = await programKey();
  await scanner.publish([key]);
  const settings = {
    SECRET_SCANNING_GITHUB_KEYS_URL: scanner.keysUrl,
    SECRET_SCANNING_GITLAB_KEYS_URL: scanner.keysUrl,
    JWKS_COOLDOWN_SECONDS: "0",
    LEAK_WEBHOOK_URL: scanner.webhookUrl,
    LEAK_WEBHOOK_SECRET: WEBHOOK_SECRET,
  };
  return { scanner, key, settings };
}

const githubBatch = (...tokens: string[]) =>
  JSON.stringify(
    tokens.map((token) => ({ token, type: "zgate_zsky_key", url: "https://github.com/octo/repo/blob/abc/config.js", source: "content" })),
  );

const usage = (key: string) => call("/zsky/v1/usage", { headers: keyHeaders("zsky", key) });

async function hmacHex(secret: string, data: string) {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return toHex(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)));
}

describe("GitHub secret scanning", () => {
  it("revokes each zgate key in a signed batch, labels every token, audits the source and notifies the webhook", async () => {
    const { scanner, key, settings } = await setup();
    const leaked = await createKey("zsky", { label: "ci" });
    const madeUp = generateKey("zsky_live_");
    const foreign = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    const response = await report("github", key, githubBatch(leaked.key, madeUp, foreign, leaked.key), settings);
    expect(response.status).toBe(200);
    const hashes = await Promise.all([leaked.key, madeUp, foreign].map(hashKey));
    expect(await json(response)).toEqual([
      { token_hash: hashes[0], token_type: "zgate_zsky_key", label: "true_positive" },
      { token_hash: hashes[1], token_type: "zgate_zsky_key", label: "false_positive" },
      { token_hash: hashes[2], token_type: "zgate_zsky_key", label: "false_positive" },
      { token_hash: hashes[0], token_type: "zgate_zsky_key", label: "true_positive" },
    ]);
    expect((await usage(leaked.key)).status).toBe(401);
    expect(await json(await admin(`/keys/${leaked.id}`))).toMatchObject({ status: "revoked", revoked_by: "secret-scanning:github" });
    const audit = (await json(await admin(`/audit?target=${leaked.id}`))).entries;
    expect(audit.filter((e: { action: string }) => e.action === "key.revoke_leaked")).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: "secret-scanning:github",
      action: "key.revoke_leaked",
      detail: { source_url: "https://github.com/octo/repo/blob/abc/config.js", why: "leaked", token_type: "zgate_zsky_key" },
    });

    const [delivery] = await scanner.deliveries();
    const notice = JSON.parse(delivery!.body);
    expect(notice).toMatchObject({
      type: "key.leaked",
      source: "secret-scanning:github",
      source_url: "https://github.com/octo/repo/blob/abc/config.js",
      key: { id: leaked.id, product: "zsky", account: leaked.account, label: "ci", prefix: "zsky_live_", last4: leaked.key.slice(-4) },
      revoked: [{ id: leaked.id, why: "leaked" }],
    });
    expect(delivery!.body).not.toContain(leaked.key);
    const { t, v1 } = Object.fromEntries(delivery!.headers["zgate-signature"]!.split(",").map((p) => p.split("=")));
    expect(v1).toBe(await hmacHex(WEBHOOK_SECRET, `${t}.${delivery!.body}`));
    expect(delivery!.headers["zgate-webhook-id"]).toBe(notice.id);
  });

  it("is idempotent: the same report again changes nothing and notifies no one twice", async () => {
    const { scanner, key, settings } = await setup();
    const leaked = await createKey("zsky");
    const body = githubBatch(leaked.key);
    const first = await json(await report("github", key, body, settings));
    const again = await report("github", key, body, settings);
    expect(again.status).toBe(200);
    expect(await json(again)).toEqual(first);
    const audit = (await json(await admin(`/audit?target=${leaked.id}`))).entries;
    expect(audit.filter((e: { action: string }) => e.action === "key.revoke_leaked")).toHaveLength(1);
    expect(await scanner.deliveries()).toHaveLength(1);
  });

  it("a key its customer already rotated: revokes the rotated successor, once; reported again, nothing is audited or announced again", async () => {
    const { scanner, key, settings } = await setup();
    const old = await createKey("zsky");
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) }));
    for (let i = 0; i < 3; i++) expect((await report("github", key, githubBatch(old.key), settings)).status).toBe(200);
    expect((await usage(rotated.key)).status).toBe(401);
    const leakEntries = async (id: string) =>
      (await json(await admin(`/audit?target=${id}&action=key.revoke_leaked`))).entries.map(
        (e: { detail: { why: string } }) => e.detail.why,
      );
    expect(await leakEntries(old.id)).toEqual(["leaked"]);
    expect(await leakEntries(rotated.key_id)).toEqual(["successor_of_leaked"]);
    const deliveries = await scanner.deliveries();
    expect(deliveries).toHaveLength(1);
    expect(JSON.parse(deliveries[0]!.body).revoked).toEqual([{ id: rotated.key_id, why: "successor_of_leaked" }]);
  });

  it("a tampered body, a missing or malformed signature: 401, nothing parsed or revoked", async () => {
    const { key, settings } = await setup();
    const leaked = await createKey("zsky");
    const body = githubBatch(leaked.key);
    const tampered = await report("github", key, body, settings, (b) => b.replace("content", "commit!"));
    expect(tampered.status).toBe(401);
    expect(await json(tampered)).toEqual({ error: { code: "UNAUTHORIZED", message: "Invalid signature" } });
    const signature = await sign(key, body);
    for (const headers of [
      {},
      { "Github-Public-Key-Identifier": key.id },
      { "Github-Public-Key-Identifier": key.id, "Github-Public-Key-Signature": "not base64!" },
      { "Github-Public-Key-Identifier": key.id, "Github-Public-Key-Signature": btoa("garbage-not-der") },
      { "Github-Public-Key-Identifier": key.id, "Github-Public-Key-Signature": signature.slice(0, -8) + "AAAAAAA=" },
    ] as Record<string, string>[]) {
      const response = await call("/security/v1/secret-scanning/github", { method: "POST", headers, body, settings });
      expect(response.status, JSON.stringify(headers)).toBe(401);
    }
    expect((await usage(leaked.key)).status).toBe(200);
  });

  it("an unknown identifier fetches the document again: a new key is taken, a key no longer listed (stale) is refused", async () => {
    const { scanner, key: old, settings } = await setup();
    const first = await createKey("zsky");
    expect((await report("github", old, githubBatch(first.key), settings)).status).toBe(200);
    const fetched = await scanner.fetches();

    // The program rotates: the document now lists only a new key.
    const rotated = await programKey();
    await scanner.publish([rotated]);
    const second = await createKey("zsky");
    expect((await report("github", rotated, githubBatch(second.key), settings)).status).toBe(200);
    expect(await scanner.fetches()).toBe(fetched + 1);
    expect((await usage(second.key)).status).toBe(401);

    const third = await createKey("zsky");
    const stale = await report("github", old, githubBatch(third.key), settings);
    expect(stale.status).toBe(401);
    const stranger = await report("github", await programKey(), githubBatch(third.key), settings);
    expect(stranger.status).toBe(401);
    expect((await usage(third.key)).status).toBe(200);
  });

  it("signed but not a batch: 400; key document unreachable: 503 so GitHub retries", async () => {
    const { key, settings } = await setup();
    for (const body of ["not json", "{}", "[]", JSON.stringify([{ token: 5, type: "x" }])]) {
      const response = await report("github", key, body, settings);
      expect(response.status, body).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    const down = await report("github", key, githubBatch("x"), {
      ...settings,
      SECRET_SCANNING_GITHUB_KEYS_URL: `${settings.SECRET_SCANNING_GITHUB_KEYS_URL}-missing`,
    });
    expect(down.status).toBe(503);
    expect(down.headers.get("Retry-After")).toBe("60");
  });

  it("the webhook is retried until it answers 2xx, with the same id and a fresh signature each time", async () => {
    const { scanner, key, settings } = await setup();
    await scanner.failWebhook(1);
    const leaked = await createKey("zsky");
    expect((await report("github", key, githubBatch(leaked.key), settings)).status).toBe(200);
    const deliveries = await scanner.deliveries();
    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]!.headers["zgate-webhook-id"]).toBe(deliveries[0]!.headers["zgate-webhook-id"]);
    for (const d of deliveries) {
      const { t, v1 } = Object.fromEntries(d.headers["zgate-signature"]!.split(",").map((p) => p.split("=")));
      expect(v1).toBe(await hmacHex(WEBHOOK_SECRET, `${t}.${d.body}`));
    }
  });
});

describe("the key document: fetches bounded whatever is sent", () => {
  afterEach(() => vi.useRealTimers());
  const foreign = githubBatch("ghp_0123456789abcdefghijklmnopqrstuvwxyz");

  it("reports signed by made-up keys, all at once: one fetch of the document, and none more within the cooldown", async () => {
    const { scanner, settings } = await setup();
    const cooldown = { ...settings, JWKS_COOLDOWN_SECONDS: "30" };
    const strangers = await Promise.all(Array.from({ length: 4 }, () => programKey()));
    const responses = await burst(24, (i) => report("github", strangers[i % 4]!, foreign, cooldown));
    expect(responses.map((r) => r.status)).toEqual(Array(24).fill(401));
    for (const stranger of strangers) expect((await report("github", stranger, foreign, cooldown)).status).toBe(401);
    expect(await scanner.fetches()).toBe(1);
  });

  it("a document that cannot be fetched: a flood of reports makes one fetch per minute, each report 503", async () => {
    const scanner = program(); // nothing published: the document is a 404
    const settings = { SECRET_SCANNING_GITHUB_KEYS_URL: scanner.keysUrl, JWKS_COOLDOWN_SECONDS: "0" };
    const key = await programKey();
    vi.useFakeTimers({ toFake: ["Date"] });
    const flood = async () => {
      const responses = await burst(20, () => report("github", key, foreign, settings));
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(503));
      expect(responses[0]!.headers.get("Retry-After")).toBe("60");
      for (let i = 0; i < 5; i++) expect((await report("github", key, foreign, settings)).status).toBe(503);
    };
    await flood();
    expect(await scanner.fetches()).toBe(1);
    vi.setSystemTime(Date.now() + 59_000);
    await flood();
    expect(await scanner.fetches()).toBe(1);
    vi.setSystemTime(Date.now() + 2_000);
    await flood();
    expect(await scanner.fetches()).toBe(2);
    // Published at last: taken at the next fetch, a minute after the last failure.
    await scanner.publish([key]);
    expect((await report("github", key, foreign, settings)).status).toBe(503);
    vi.setSystemTime(Date.now() + 60_000);
    expect((await report("github", key, foreign, settings)).status).toBe(200);
    expect(await scanner.fetches()).toBe(3);
  });

  it("past its hour, a document that cannot be fetched again is still used for 24 hours, fetched at most once a minute meanwhile", async () => {
    const { scanner, key, settings } = await setup();
    expect((await report("github", key, foreign, settings)).status).toBe(200);
    const broken = await fetch(scanner.keysUrl, { method: "PUT", body: "not a key document" });
    expect(broken.status).toBe(204);
    vi.useFakeTimers({ toFake: ["Date"] });
    const started = Date.now();
    vi.setSystemTime(started + 61 * 60_000);
    for (let i = 0; i < 5; i++) expect((await report("github", key, foreign, settings)).status).toBe(200);
    expect(await scanner.fetches()).toBe(2);
    vi.setSystemTime(started + 25 * 3_600_000 - 1_000);
    expect((await report("github", key, foreign, settings)).status).toBe(200);
    expect(await scanner.fetches()).toBe(3);
    vi.setSystemTime(started + 25 * 3_600_000 + 60_000);
    expect((await report("github", key, foreign, settings)).status).toBe(503);
    expect(await scanner.fetches()).toBe(4);
  });
});

describe("GitLab token revocation", () => {
  it("a signed {type, token, url}: 204 and the key revoked as secret-scanning:gitlab", async () => {
    const { key, settings } = await setup();
    const leaked = await createKey("zappway");
    const body = JSON.stringify({ type: "zgate_key", token: leaked.key, url: "https://gitlab.com/g/p/-/blob/main/.env" });
    const response = await report("gitlab", key, body, settings);
    expect(response.status).toBe(204);
    expect(await json(await admin(`/keys/${leaked.id}`))).toMatchObject({ status: "revoked", revoked_by: "secret-scanning:gitlab" });
    expect((await json(await admin(`/audit?target=${leaked.id}`))).entries[0].detail.source_url).toBe(
      "https://gitlab.com/g/p/-/blob/main/.env",
    );
    expect((await report("gitlab", key, body, settings, (b) => b.replace("main", "dev"))).status).toBe(401);
    // A foreign token is processed too (2xx), and nothing is revoked.
    expect((await report("gitlab", key, JSON.stringify({ type: "x", token: "glpat-abc", url: null }), settings)).status).toBe(204);
  });

  it("503 until its key document URL is set", async () => {
    const { key, settings } = await setup();
    const response = await report("gitlab", key, JSON.stringify({ type: "x", token: "t" }), {
      ...settings,
      SECRET_SCANNING_GITLAB_KEYS_URL: "",
    });
    expect(response.status).toBe(503);
  });
});
