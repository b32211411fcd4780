import { describe, expect, it } from "vitest";
import {
  contentDigest,
  signingKeyId,
  signRequest,
  verifyRequestSignature,
  verifySignedRequest,
  type SignedRequest,
} from "../src/forward/identity-signature";
import { bearer, call, createKey, json, login, sims, type CallOptions } from "./helpers";

/** The origin simulators answer `X-Sim-Echo: 1` with the request exactly as they received it. */
async function echo(path: string, init: CallOptions & { headers?: Record<string, string> } = {}) {
  const response = await call(path, { ...init, headers: { "X-Sim-Echo": "1", ...init.headers } });
  expect(response.status).toBe(200);
  return { response, seen: await json(response) };
}

/** The echoed request as an origin received it, for the origin-side verifier. */
function asReceived(seen: { method: string; path: string; query: string; headers: Record<string, string> }) {
  return { method: seen.method, url: `http://origin.test${seen.path}${seen.query}`, headers: new Headers(seen.headers) };
}

describe("forwarding to the origin", () => {
  it("rewrites the path to the origin's own, keeps the query, method and body", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/login?next=%2Fhome&x=1", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "a@b.c", password: "x" }),
    });
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/api/v1/auth/login");
    expect(seen.query).toBe("?next=%2Fhome&x=1");
    expect(JSON.parse(seen.body)).toEqual({ email: "a@b.c", password: "x" });
  });

  it("forwards the end-to-end fields of an API call and no others (hop-by-hop, named by Connection, unknown)", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Connection: "X-Private-Hop",
        "X-Private-Hop": "secret",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic abc",
        TE: "trailers",
        Upgrade: "websocket",
        Cookie: "session=abc",
        "X-Custom": "not an origin's contract",
        Accept: "application/json",
        "Accept-Language": "km",
        "Idempotency-Key": "idem-0001",
        "User-Agent": "sdk/1.0",
      },
      body: "{}",
    });
    for (const h of ["connection", "x-private-hop", "keep-alive", "proxy-authorization", "te", "upgrade", "cookie", "x-custom"]) {
      expect(seen.headers[h]).toBeUndefined();
    }
    expect(seen.headers).toMatchObject({
      accept: "application/json",
      "accept-language": "km",
      "idempotency-key": "idem-0001",
      "user-agent": "sdk/1.0",
    });
  });

  it("never passes a caller's forwarding, method-override or rewrite fields; sends its own X-Forwarded-*", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "CF-Connecting-IP": "203.0.113.7",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "8443",
        "X-Forwarded-Prefix": "/evil",
        "X-Forwarded-Server": "evil",
        "X-HTTP-Method-Override": "DELETE",
        "X-HTTP-Method": "DELETE",
        "X-Method-Override": "DELETE",
        "X-Original-URL": "/api/v1/users/me",
        "X-Rewrite-URL": "/api/v1/users/me",
      },
      body: "{}",
    });
    const forwarded = Object.fromEntries(
      Object.entries(seen.headers as Record<string, string>).filter(([h]) => h.startsWith("x-forwarded-")),
    );
    expect(forwarded).toEqual({
      "x-forwarded-for": "203.0.113.7",
      "x-forwarded-host": "localhost",
      "x-forwarded-proto": "http",
      "x-forwarded-prefix": "/zakgt",
    });
    for (const h of ["x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "x-rewrite-url"])
      expect(seen.headers[h]).toBeUndefined();

    // On the product's own host there is no prefix to report.
    const byHost = await call("/api/v1/auth/forgot-password", {
      base: "https://api.zakgt.net",
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Sim-Echo": "1", "X-Forwarded-Prefix": "/evil" },
      body: "{}",
    });
    const hostSeen = (await json(byHost)).headers;
    expect([hostSeen["x-forwarded-host"], hostSeen["x-forwarded-proto"], hostSeen["x-forwarded-prefix"]]).toEqual([
      "api.zakgt.net",
      "https",
      undefined,
    ]);
  });

  it("a deployment may forward more fields (ORIGIN_FORWARD_HEADERS), never ones zgate owns", async () => {
    const settings = { ORIGIN_FORWARD_HEADERS: "X-Sim-*, X-Tenant, X-Partner-*" };
    const response = await call("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      settings,
      headers: { "Content-Type": "application/json", "X-Sim-Echo": "1", "X-Tenant": "t1", "X-Partner-Id": "p1", "X-Other": "no" },
      body: "{}",
    });
    const seen = (await json(response)).headers;
    expect([seen["x-tenant"], seen["x-partner-id"], seen["x-other"]]).toEqual(["t1", "p1", undefined]);
    for (const owned of ["X-Forwarded-Host", "X-Zgate-*", "X-HTTP-Method-Override", "Authorization", "Connection"]) {
      const refused = await call("/zakgt/api/v1/auth/forgot-password", {
        method: "POST",
        settings: { ORIGIN_FORWARD_HEADERS: owned },
        body: "{}",
      });
      expect(refused.status).toBe(503);
    }
  });

  it("drops caller-supplied X-Zgate-* identity headers and adds its own, signed", async () => {
    const token = await login();
    const { seen, response } = await echo("/zakgt/api/v1/users/me?view=full", {
      headers: {
        ...bearer(token),
        "X-Zgate-Account": "usr_admin",
        "X-Zgate-User": "usr_admin",
        "X-Zgate-Key-Id": "k_forged",
        "X-Zgate-Nonce": "n",
      },
    });
    expect(seen.headers["x-zgate-product"]).toBe("zakgt");
    expect(seen.headers["x-zgate-account"]).toBe("usr_demo");
    expect(seen.headers["x-zgate-user"]).toBe("usr_demo");
    expect(seen.headers["x-zgate-key-id"]).toBeUndefined();
    expect(seen.headers["x-zgate-nonce"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.headers["x-request-id"]).toBe(response.headers.get("X-Request-Id"));
    expect(seen.headers["x-zgate-signature"]).toMatch(/^v2=[0-9a-f]{64}$/);

    const signed = await verifySignedRequest([sims.signingSecret], asReceived(seen), new Uint8Array(0));
    expect(signed).toMatchObject({
      method: "GET",
      pathAndQuery: "/api/v1/users/me?view=full",
      account: "usr_demo",
      forwardedHost: "localhost",
    });
    // Any change to the signed fields breaks the signature.
    const signature = seen.headers["x-zgate-signature"];
    for (const change of [
      { account: "usr_admin" },
      { pathAndQuery: "/api/v1/wallet/balance" },
      { method: "DELETE" },
      { nonce: "another" },
      { forwardedHost: "evil.example" },
    ]) {
      expect(await verifyRequestSignature(sims.signingSecret, { ...signed!, ...change }, signature)).toBe(false);
    }
    expect(await verifyRequestSignature("another-secret-another-secret-xx", signed!, signature)).toBe(false);
  });

  it("signs public requests too, with empty identity fields, and the body's digest", async () => {
    const body = '{"email":"a@b.c"}';
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
    expect(seen.headers["x-zgate-account"]).toBeUndefined();
    expect(seen.headers["content-digest"]).toBe(await contentDigest(new TextEncoder().encode(body)));
    const signed = await verifySignedRequest([sims.signingSecret], asReceived(seen), new TextEncoder().encode(body));
    expect(signed).toMatchObject({ account: "", user: "", keyId: "", product: "zakgt" });
    // The same signed headers with another body: refused.
    expect(await verifySignedRequest([sims.signingSecret], asReceived(seen), new TextEncoder().encode('{"email":"x@y.z"}'))).toBeNull();
  });

  it("the digest of no body is that of the empty string (RFC 9530)", async () => {
    expect(await contentDigest(null)).toBe("sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
  });

  it("an origin refuses a stale signature", async () => {
    const signed: SignedRequest = {
      timestamp: 1_000,
      nonce: "n",
      method: "GET",
      pathAndQuery: "/",
      contentDigest: await contentDigest(null),
      product: "zakgt",
      account: "",
      user: "",
      keyId: "",
      requestId: "r",
      forwardedFor: "",
      forwardedHost: "",
      forwardedProto: "",
      forwardedPrefix: "",
    };
    const signature = await signRequest(sims.signingSecret, signed);
    expect(await verifyRequestSignature(sims.signingSecret, signed, signature, 1_000 + 299)).toBe(true);
    expect(await verifyRequestSignature(sims.signingSecret, signed, signature, 1_000 + 301)).toBe(false);
  });

  it("a captured signed request is not accepted again by the origin, nor with another body", async () => {
    const { key } = await createKey("zsky");
    const body = JSON.stringify({ prompt: "a lighthouse" });
    const { seen } = await echo("/zsky/v1/images/generate", {
      method: "POST",
      headers: { "X-API-Key": key, "Content-Type": "application/json" },
      body,
    });
    const captured = Object.fromEntries(
      Object.entries(seen.headers as Record<string, string>).filter(
        ([h]) => h.startsWith("x-zgate-") || h.startsWith("x-forwarded-") || ["x-request-id", "content-digest", "content-type"].includes(h),
      ),
    );
    const replay = (b: string) => fetch(`${sims.origins.zsky}/v1/images/generate`, { method: "POST", headers: captured, body: b });

    const other = await replay(JSON.stringify({ prompt: "something the gateway never validated", n: 1000 }));
    expect(other.status).toBe(401);
    expect(await json(other)).toEqual({ error: "Untrusted gateway identity" });
    // The echo did not spend the nonce, so the origin takes the request once, and only once.
    expect((await replay(body)).status).toBe(200);
    expect((await replay(body)).status).toBe(401);
  });

  it("never forwards an API-key secret, wherever the caller put it", async () => {
    const { seen } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": "zsky_live_secret", Authorization: "Bearer zak_live_secretsecret" },
      body: "{}",
    });
    expect(seen.headers["x-api-key"]).toBeUndefined();
    expect(seen.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain("secret");
  });

  it("passes a verified ZakGT session token on to the origin that issued it", async () => {
    const token = await login();
    const { seen } = await echo("/zakgt/api/v1/users/me", { headers: bearer(token) });
    expect(seen.headers.authorization).toBe(`Bearer ${token}`);
  });

  it("passes origin responses through untouched: status, headers, body", async () => {
    const response = await call("/zakgt/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: "demo@zakgt.test", password: "wrong" }),
    });
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ detail: "Invalid email or password" });

    const token = await login();
    const notFound = await call("/zakgt/api/v1/tools/tool_missing", { headers: bearer(token) });
    expect(notFound.status).toBe(404);
    expect(await json(notFound)).toEqual({ detail: "Tool not found" });
  });
});

describe("X-Request-Id", () => {
  it("keeps a caller's well-formed id on the response and towards the origin", async () => {
    const { seen, response } = await echo("/zakgt/api/v1/auth/forgot-password", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Request-Id": "client-req-0001" },
      body: "{}",
    });
    expect(response.headers.get("X-Request-Id")).toBe("client-req-0001");
    expect(seen.headers["x-request-id"]).toBe("client-req-0001");
  });

  it("replaces a malformed one with a new UUID", async () => {
    for (const bad of ["short", "has spaces in it", "x".repeat(200), "semi;colon-0001"]) {
      const response = await call("/zakgt/api/v1/nope", { headers: { "X-Request-Id": bad } });
      expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("is on every response, including gateway errors", async () => {
    for (const path of ["/nothing", "/zsky/v1/usage", "/zakgt/api/v1/users/me"]) {
      const response = await call(path);
      expect(response.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

/**
 * Rotating ORIGIN_SIGNING_SECRET without an outage (docs/deploy.md): origins accept the old
 * and the new secret, the gateway moves to the new one, then origins drop the old one.
 * The simulators accept both `sims.signingSecret` and `sims.nextSigningSecret`.
 */
describe("origin signing secret rotation", () => {
  const rotated = { ORIGIN_SIGNING_SECRET: sims.nextSigningSecret };
  const signedBy = async (settings?: Record<string, unknown>) => {
    const { seen } = await echo("/zakgt/api/v1/users/me?view=full", { headers: bearer(await login()), settings });
    return seen;
  };

  it("the gateway names the secret it signed with: the first 16 hex digits of its SHA-256", async () => {
    const seen = await signedBy();
    expect(seen.headers["x-zgate-signature-kid"]).toBe(await signingKeyId(sims.signingSecret));
    expect(seen.headers["x-zgate-signature-kid"]).toMatch(/^[0-9a-f]{16}$/);
    expect((await signedBy(rotated)).headers["x-zgate-signature-kid"]).toBe(await signingKeyId(sims.nextSigningSecret));
  });

  it("sign with the new secret: origins holding both accept old and new; dropping the old refuses what it signed", async () => {
    // Origins that hold both secrets serve the gateway before and after it moves.
    for (const settings of [undefined, rotated]) {
      const response = await call("/zakgt/api/v1/users/me", { headers: bearer(await login()), settings });
      expect(response.status).toBe(200);
    }
    const old = asReceived(await signedBy());
    const fresh = asReceived(await signedBy(rotated));
    const both = [sims.signingSecret, sims.nextSigningSecret];
    expect(await verifySignedRequest(both, old, new Uint8Array(0))).toMatchObject({ account: "usr_demo" });
    expect(await verifySignedRequest(both, fresh, new Uint8Array(0))).toMatchObject({ account: "usr_demo" });
    // The old secret removed: what it signed is refused, the new one's still verifies.
    expect(await verifySignedRequest([sims.nextSigningSecret], old, new Uint8Array(0))).toBeNull();
    expect(await verifySignedRequest([sims.nextSigningSecret], fresh, new Uint8Array(0))).not.toBeNull();
  });

  it("an origin not given the new secret yet refuses it, so origins move first", async () => {
    const fresh = asReceived(await signedBy(rotated));
    expect(await verifySignedRequest([sims.signingSecret], fresh, new Uint8Array(0))).toBeNull();
    const unknown = { ORIGIN_SIGNING_SECRET: "a-secret-no-origin-holds-0123456789abcdef" };
    const response = await call("/zakgt/api/v1/users/me", { headers: bearer(await login()), settings: unknown });
    expect(response.status).toBe(401);
  });

  it("a missing or edited key id is refused, never tried against other secrets", async () => {
    const seen = await signedBy();
    const both = [sims.signingSecret, sims.nextSigningSecret];
    for (const kid of [undefined, await signingKeyId(sims.nextSigningSecret), "0000000000000000"]) {
      const headers = { ...seen.headers, "x-zgate-signature-kid": kid };
      if (kid === undefined) delete headers["x-zgate-signature-kid"];
      expect(await verifySignedRequest(both, asReceived({ ...seen, headers }), new Uint8Array(0))).toBeNull();
    }
  });
});
