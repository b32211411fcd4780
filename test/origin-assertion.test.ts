import { decodeJwt, decodeProtectedHeader, type JSONWebKeySet } from "jose";
import { describe, expect, it } from "vitest";
import { Refused, zgateVerifier } from "../examples/origin-verify/zgate_verify";
import { useTestClock } from "./clock";
import { bearer, call, createKey, echo, json, keyHeaders, login, sims } from "./helpers";

/** The gateway's published keys, as an origin fetches them. */
async function publishedBy(settings?: Record<string, unknown>): Promise<JSONWebKeySet> {
  const response = await call("/.well-known/jwks.json", { settings });
  expect(response.status).toBe(200);
  return json(response);
}

type Seen = { method: string; path: string; query: string; headers: Record<string, string>; body: string };

/** What an origin verifier takes from a request the simulator echoed. */
const received = (seen: Seen, now?: number) => ({
  method: seen.method,
  target: seen.path + seen.query,
  assertion: seen.headers["x-zgate-assertion"],
  body: new TextEncoder().encode(seen.body),
  now: now === undefined ? undefined : new Date(now),
});

/** Why a verifier refused (`accepted` when it did not). */
async function verdict(verify: ReturnType<typeof zgateVerifier>, request: ReturnType<typeof received>): Promise<string> {
  try {
    await verify(request);
    return "accepted";
  } catch (err) {
    if (err instanceof Refused) return err.reason;
    throw err;
  }
}

describe("the origin assertion", () => {
  it("is the one identity field an origin gets: a caller's X-Zgate-*, Cf-*, X-Forwarded-* and assertion are dropped", async () => {
    const token = await login();
    const { seen, response } = await echo("/zakgt/api/v1/users/me?view=full", {
      headers: {
        ...bearer(token),
        "CF-Connecting-IP": "203.0.113.7",
        "X-Zgate-Assertion": "eyJhbGciOiJFZERTQSJ9.eyJhY2NvdW50IjoidXNyX2FkbWluIn0.forged",
        "X-Zgate-Account": "usr_admin",
        "X-Zgate-User": "usr_admin",
        "CF-Ray": "forged",
        "CF-Access-Jwt-Assertion": "forged",
        "X-Forwarded-For": "10.0.0.1",
        "X-Forwarded-Host": "evil.example",
      },
    });
    // `CF-Worker` is the runtime's own on every subrequest (the zone it came from), never a caller's.
    const zgates = Object.keys(seen.headers).filter((h) => /^(x-zgate-|cf-|x-forwarded-|x-request-id$)/.test(h) && h !== "cf-worker");
    expect(zgates.sort()).toEqual([
      "x-forwarded-for",
      "x-forwarded-host",
      "x-forwarded-prefix",
      "x-forwarded-proto",
      "x-request-id",
      "x-zgate-assertion",
    ]);
    expect(seen.headers["x-forwarded-for"]).toBe("203.0.113.7");
    expect(seen.headers["x-request-id"]).toBe(response.headers.get("X-Request-Id"));
    const assertion = seen.headers["x-zgate-assertion"];
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: "EdDSA", typ: "zgate-assertion+jwt", kid: "t1" });
    const claims = decodeJwt(assertion);
    expect(claims).toEqual({
      iss: "zgate",
      aud: "zakgt",
      sub: "usr_demo",
      account: "usr_demo",
      user: "usr_demo",
      request_id: response.headers.get("X-Request-Id"),
      iat: expect.any(Number),
      exp: claims.iat! + 60,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      htm: "GET",
      htu: `${sims.origins.zakgt}/api/v1/users/me`,
      query_digest:
        "sha-256=:" +
        btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("view=full"))))) +
        ":",
      content_digest: "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    });
    const verify = zgateVerifier({ keys: await publishedBy(), audience: "zakgt", origin: sims.origins.zakgt });
    expect(await verify(received(seen))).toMatchObject({ subject: "usr_demo", account: "usr_demo", user: "usr_demo" });
  });

  it("names the key as its subject on a keyed call, and no one on a public route; binds the body", async () => {
    const { id, key, account } = await createKey("zsky");
    const body = JSON.stringify({ prompt: "a lighthouse" });
    const keyed = await echo("/zsky/v1/images/generate", {
      method: "POST",
      headers: { ...keyHeaders("zsky", key), "Content-Type": "application/json" },
      body,
    });
    expect(decodeJwt(keyed.seen.headers["x-zgate-assertion"])).toMatchObject({ aud: "zsky", sub: id, key_id: id, account, htm: "POST" });
    expect(decodeJwt(keyed.seen.headers["x-zgate-assertion"]).user).toBeUndefined();
    const verify = zgateVerifier({ keys: await publishedBy(), audience: "zsky", origin: sims.origins.zsky });
    expect(await verdict(verify, { ...received(keyed.seen), body: new TextEncoder().encode('{"prompt":"another"}') })).toBe(
      "body does not match",
    );
    expect(await verdict(verify, received(keyed.seen))).toBe("accepted");

    const open = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    });
    const claims = decodeJwt(open.seen.headers["x-zgate-assertion"]);
    expect([claims.sub, claims.account, claims.user, claims.key_id]).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("a ZSky origin refuses every assertion minted for ZakGT or ZappWay", async () => {
    const zakgt = await echo("/zakgt/api/v1/users/me", { headers: bearer(await login()) });
    const { key } = await createKey("zappway");
    const zappway = await echo("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) });
    const keys = await publishedBy();
    for (const [seen, origin] of [
      [zakgt.seen, sims.origins.zakgt],
      [zappway.seen, sims.origins.zappway],
    ] as const) {
      // Even told the other origin's URL, a ZSky verifier refuses it for its audience.
      const asZsky = zgateVerifier({ keys, audience: "zsky", origin });
      expect(await verdict(asZsky, received(seen))).toBe("invalid assertion: ERR_JWT_CLAIM_VALIDATION_FAILED (aud)");
      // The ZSky simulator, sent it as it was: 401 in ZSky's envelope.
      const sent = await fetch(`${sims.origins.zsky}${seen.path}${seen.query}`, {
        method: seen.method,
        headers: { "X-Zgate-Assertion": seen.headers["x-zgate-assertion"] },
      });
      expect(sent.status).toBe(401);
      expect(await json(sent)).toEqual({ error: "Untrusted gateway identity" });
      // And it was good where it was meant to go (a fresh verifier: the jti is unused).
      const own = zgateVerifier({ keys, audience: decodeJwt(seen.headers["x-zgate-assertion"]).aud as string, origin });
      expect(await verdict(own, received(seen))).toBe("accepted");
    }
  });

  it("the origin takes a captured request once, and never with another body", async () => {
    const { key } = await createKey("zsky");
    const body = JSON.stringify({ prompt: "a lighthouse" });
    const { seen } = await echo("/zsky/v1/images/generate", {
      method: "POST",
      headers: { "X-API-Key": key, "Content-Type": "application/json" },
      body,
    });
    const captured = { "x-zgate-assertion": seen.headers["x-zgate-assertion"], "content-type": "application/json" };
    const replay = (b: string) => fetch(`${sims.origins.zsky}/v1/images/generate`, { method: "POST", headers: captured, body: b });
    const other = await replay(JSON.stringify({ prompt: "something the gateway never validated", n: 1000 }));
    expect(other.status).toBe(401);
    // The echo did not spend the jti, so the origin takes the request once, and only once.
    expect((await replay(body)).status).toBe(200);
    expect((await replay(body)).status).toBe(401);
  });

  it("lives 60 s, on the wall clock the origins keep: a verifier allows less than 30 s of skew past it", async () => {
    // zgate's own clock moved a day: an origin still judges the assertion by its own time.
    await useTestClock().advance(86_400_000);
    const before = Math.floor(Date.now() / 1000);
    const { seen } = await echo("/zappway/api/v1/agents", { headers: keyHeaders("zappway", (await createKey("zappway")).key) });
    const { iat, exp } = decodeJwt(seen.headers["x-zgate-assertion"]);
    expect(iat).toBeGreaterThanOrEqual(before);
    expect(iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(exp).toBe(iat! + 60);
    const keys = await publishedBy();
    const verifier = () => zgateVerifier({ keys, audience: "zappway", origin: sims.origins.zappway });
    expect(await verdict(verifier(), received(seen, (exp! + 29) * 1000))).toBe("accepted");
    expect(await verdict(verifier(), received(seen, (exp! + 30) * 1000))).toBe("invalid assertion: ERR_JWT_EXPIRED (exp)");
  });

  it("its keys are served on gateway hosts, cacheable and public halves only, never on a product's host", async () => {
    const response = await call("/.well-known/jwks.json");
    expect(response.headers.get("cache-control")).toBe("public, max-age=300");
    const [published] = (await json(response)).keys;
    expect(Object.keys(published).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
    const onProduct = await call("/.well-known/jwks.json", { base: "https://zsky.ai" });
    expect(onProduct.status).toBe(404);
  });
});

/**
 * The rotation of docs/deploy.md, step by step, with an origin that caches the published
 * keys for the JWKS's max-age: a new key is published (and signs nothing) at least that
 * long plus 60 s before it signs; the old one stays published until all it signed expired.
 */
describe("assertion key rotation", () => {
  const [[oldKid, oldKey]] = Object.entries(JSON.parse(sims.assertionKeys) as Record<string, string>) as [[string, string]];
  const both = JSON.stringify({ [oldKid]: oldKey, t2: sims.nextAssertionKey });
  const kids = (kid: string) => ({ ZAKGT_ASSERTION_KID: kid, ZSKY_ASSERTION_KID: kid, ZAPPWAY_ASSERTION_KID: kid });
  const steps = {
    before: undefined,
    published: { ORIGIN_ASSERTION_KEYS: both, ...kids(oldKid) },
    signing: { ORIGIN_ASSERTION_KEYS: both, ...kids("t2") },
    retired: { ORIGIN_ASSERTION_KEYS: JSON.stringify({ t2: sims.nextAssertionKey }) },
  };
  const kidOf = (seen: Seen) => decodeProtectedHeader(seen.headers["x-zgate-assertion"]!).kid;

  it("publish, wait out the cache, sign, wait out the assertions, retire: no request refused", async () => {
    // A key's call, verified as its origin would when it arrives (now); the waits are the origin's cache and the assertions' life.
    const { key } = await createKey("zappway");
    const signedAt = async (settings?: Record<string, unknown>) =>
      (await echo("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings })).seen as Seen;
    const verifier = (keys: JSONWebKeySet) => zgateVerifier({ keys, audience: "zappway", origin: sims.origins.zappway });
    // The origin's cached copy, fetched before the rotation.
    let cached = await publishedBy(steps.before);

    // 1. Publish the new key beside the old, every product still naming the old: it signs nothing yet.
    expect((await publishedBy(steps.published)).keys.map((k) => k.kid)).toEqual([oldKid, "t2"]);
    const fromOld = await signedAt(steps.published);
    expect(kidOf(fromOld)).toBe(oldKid);
    expect(await verdict(verifier(cached), received(fromOld))).toBe("accepted");
    // Publishing a second key without naming the signing one for every product is refused, never a silent switch.
    expect((await call("/zappway/api/v1/agents", { settings: { ORIGIN_ASSERTION_KEYS: both } })).status).toBe(503);
    // Signing with it before the origin's copy expired would be refused.
    const early = await signedAt(steps.signing);
    expect(await verdict(verifier(cached), received(early))).toBe("invalid assertion: ERR_JWKS_NO_MATCHING_KEY");

    // 2. Wait at least the JWKS's max-age and 60 s: every origin's copy now has the new key.
    const cacheControl = (await call("/.well-known/jwks.json", { settings: steps.published })).headers.get("cache-control");
    expect(cacheControl).toBe("public, max-age=300");
    cached = await publishedBy(steps.published);
    const lastOfOld = await signedAt(steps.published);

    // 3. Sign with the new key: accepted, and what the old one signed just before still is.
    const fromNew = await signedAt(steps.signing);
    expect(kidOf(fromNew)).toBe("t2");
    expect(await verdict(verifier(cached), received(fromNew))).toBe("accepted");
    expect(await verdict(verifier(cached), received(lastOfOld))).toBe("accepted");

    // 4. Once all the old key signed has expired (60 s, and the verifiers' 30 s of skew), retire it.
    const { exp } = decodeJwt(lastOfOld.headers["x-zgate-assertion"]!);
    const expired = (exp! + 30) * 1000;
    expect(await verdict(verifier(cached), received(lastOfOld, expired))).toBe("invalid assertion: ERR_JWT_EXPIRED (exp)");
    expect((await publishedBy(steps.retired)).keys.map((k) => k.kid)).toEqual(["t2"]);
    expect(await verdict(verifier(await publishedBy(steps.retired)), received(await signedAt(steps.retired)))).toBe("accepted");
  });
});
