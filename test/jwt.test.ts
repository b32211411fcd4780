import { SignJWT, generateKeyPair } from "jose";
import { describe, expect, it, vi } from "vitest";
import { useTestClock } from "./clock";
import { admin, bearer, call, json, login, mintToken, newUser } from "./helpers";

const ME = "/zakgt/api/v1/users/me";
const now = () => Math.floor(Date.now() / 1000);

async function meWith(token: string, settings?: Record<string, unknown>) {
  return call(ME, { headers: bearer(token), settings });
}

describe("ZakGT access tokens at the edge", () => {
  it("a token from login reads users/me", async () => {
    const response = await meWith(await login());
    expect(response.status).toBe(200);
    expect((await json(response)).data).toMatchObject({ id: "usr_demo", email: "demo@zakgt.test" });
  });

  it("401 without a token, with a non-Bearer scheme, with garbage", async () => {
    expect(await json(await call(ME))).toEqual({ detail: "Not authenticated" });
    for (const authorization of ["Basic ZGVtbzpkZW1v", "Bearer", "Bearer a b", "Bearer not.a.jwt", "Bearer eyJ.eyJ.sig"]) {
      const response = await call(ME, { headers: { Authorization: authorization } });
      expect(response.status).toBe(401);
      expect(await json(response)).toEqual({ detail: "Could not validate credentials" });
    }
  });

  it("accepts the Bearer scheme in any case", async () => {
    const token = await login();
    const response = await call(ME, { headers: { Authorization: `bEaReR ${token}` } });
    expect(response.status).toBe(200);
  });

  it("never reads a token from the query string", async () => {
    const token = await login();
    const response = await call(`${ME}?access_token=${token}&token=${token}`);
    expect(response.status).toBe(401);
  });

  it("refuses an expired token, but tolerates the clock skew", async () => {
    const expired = await mintToken({ iat: now() - 3600, exp: now() - 120 });
    const response = await meWith(expired);
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({ detail: "Access token expired" });

    const justExpired = await mintToken({ iat: now() - 3600, exp: now() - 10 });
    expect((await meWith(justExpired)).status).toBe(200);
    expect((await meWith(justExpired, { JWT_CLOCK_SKEW_SECONDS: "0" })).status).toBe(401);
  });

  it("a verified token reused from the isolate's cache is refused from the second its exp (plus the skew) passes", async () => {
    const { userId } = await newUser();
    const noSkew = { JWT_CLOCK_SKEW_SECONDS: "0" };
    const exp = now() + 20;
    const token = await mintToken({ sub: userId, exp });
    const skewed = await mintToken({ sub: userId, exp });
    // Verified once, well before exp: later calls are answered from the cache.
    expect((await meWith(token, noSkew)).status).toBe(200);
    expect((await meWith(skewed)).status).toBe(200);
    const clock = useTestClock();
    await clock.advanceTo(exp * 1000 - 1);
    expect((await meWith(token, noSkew)).status).toBe(200);
    await clock.advanceTo(exp * 1000);
    const expired = await meWith(token, noSkew);
    expect(expired.status).toBe(401);
    expect(await json(expired)).toEqual({ detail: "Access token expired" });
    // The default skew (30 s) moves the end by as much.
    await clock.advanceTo((exp + 30) * 1000 - 1);
    expect((await meWith(skewed)).status).toBe(200);
    await clock.advanceTo((exp + 30) * 1000);
    expect((await meWith(skewed)).status).toBe(401);
  });

  it("refuses a token not valid yet (nbf) beyond the skew", async () => {
    expect((await meWith(await mintToken({ nbf: now() + 600 }))).status).toBe(401);
    expect((await meWith(await mintToken({ nbf: now() + 10 }))).status).toBe(200);
  });

  it("refuses the wrong issuer or audience", async () => {
    expect((await meWith(await mintToken({ iss: "https://evil.example" }))).status).toBe(401);
    expect((await meWith(await mintToken({ aud: "another-api" }))).status).toBe(401);
    expect((await meWith(await login(), { ZAKGT_JWT_AUDIENCE: "another-api" })).status).toBe(401);
  });

  it("refuses tokens missing sub, jti or iat", async () => {
    for (const claim of ["sub", "jti", "iat", "exp"]) {
      expect((await meWith(await mintToken({ [claim]: null }))).status).toBe(401);
    }
  });

  it("refuses claims of the wrong type", async () => {
    for (const claims of [
      { sub: 42 },
      { sub: { id: "usr_demo" } },
      { sub: "" },
      { jti: 7 },
      { jti: ["a"] },
      { iat: "1700000000" },
      { exp: String(now() + 600) },
      { nbf: "0" },
    ]) {
      const response = await meWith(await mintToken(claims));
      expect(response.status, JSON.stringify(claims)).toBe(401);
      expect(await json(response)).toEqual({ detail: "Could not validate credentials" });
    }
  });

  it("refuses a token issued in the future beyond the skew, so it cannot outlive a revoke of all sessions", async () => {
    const { userId } = await newUser();
    const future = await mintToken({ sub: userId, iat: now() + 3600, exp: now() + 7200 });
    expect((await meWith(future)).status).toBe(401);
    expect((await meWith(await mintToken({ sub: userId, iat: now() + 10 }))).status).toBe(200);

    expect((await admin(`/users/${userId}/revoke-sessions`, { json: {} })).status).toBe(200);
    expect((await meWith(future)).status).toBe(401);
  });

  it("refuses a token signed by another key, even with the right kid", async () => {
    const real = await login();
    const header = JSON.parse(atob(real.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")));
    const { privateKey } = await generateKeyPair("ES256");
    const forged = await new SignJWT({ sub: "usr_demo", jti: "j1", iss: "https://api.zakgt.net", aud: "zakgt-api" })
      .setProtectedHeader({ alg: "ES256", kid: header.kid })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await meWith(forged)).status).toBe(401);

    const unknownKid = await new SignJWT({ sub: "usr_demo", jti: "j2", iss: "https://api.zakgt.net", aud: "zakgt-api" })
      .setProtectedHeader({ alg: "ES256", kid: "nobody" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await meWith(unknownKid)).status).toBe(401);
  });

  it("refuses a tampered payload", async () => {
    const [h, p, s] = (await login()).split(".");
    const claims = JSON.parse(atob(p!.replace(/-/g, "+").replace(/_/g, "/")));
    const forgedPayload = btoa(JSON.stringify({ ...claims, sub: "usr_other" }))
      .replace(/=+$/, "")
      .replace(/\+/g, "-")
      .replace(/\//g, "_");
    expect((await meWith(`${h}.${forgedPayload}.${s}`)).status).toBe(401);
  });

  it("refuses alg=none and HS256 tokens when a JWKS is configured", async () => {
    const none = `${btoa('{"alg":"none"}').replace(/=+$/, "")}.${btoa(JSON.stringify({ sub: "usr_demo", jti: "x", iat: now(), exp: now() + 60 })).replace(/=+$/, "")}.`;
    expect((await call(ME, { headers: { Authorization: `Bearer ${none}x` } })).status).toBe(401);
    const hs = await new SignJWT({ sub: "usr_demo", jti: "j3", iss: "https://api.zakgt.net", aud: "zakgt-api" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("x".repeat(40)));
    expect((await meWith(hs)).status).toBe(401);
  });

  it("503, not 401, when the key set cannot be fetched", async () => {
    const response = await meWith(await login(), { ZAKGT_JWKS_URL: "http://127.0.0.1:9/.well-known/jwks.json" });
    expect(response.status).toBe(503);
    expect(response.headers.get("Retry-After")).toBe("5");
    expect(await json(response)).toEqual({ detail: "Unable to verify credentials right now" });
  });
});

describe("HS256 development secret", () => {
  const secret = "development-only-secret-0123456789abcdef";
  const hsSettings = { ZAKGT_JWKS_URL: "", ZAKGT_JWT_SECRET: secret };

  async function hsToken(claims: Record<string, unknown> = {}) {
    return new SignJWT({ sub: "usr_demo", jti: crypto.randomUUID(), iss: "https://api.zakgt.net", aud: "zakgt-api", ...claims })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(secret));
  }

  it("verifies HS256 tokens in development", async () => {
    expect((await meWith(await hsToken(), hsSettings)).status).toBe(200);
    const wrong = await new SignJWT({ sub: "usr_demo", jti: "j", iss: "https://api.zakgt.net", aud: "zakgt-api" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("another-secret-another-secret-another"));
    expect((await meWith(wrong, hsSettings)).status).toBe(401);
  });

  it("is refused as a setting outside development", async () => {
    const spy = vi.spyOn(console, "error");
    const response = await call(ME, { base: "https://api.zakgt.net", settings: { ...hsSettings, ENVIRONMENT: "production" } });
    const logged = spy.mock.calls.map((args) => String(args[0])).join("\n");
    spy.mockRestore();
    expect(response.status).toBe(503);
    expect(await json(response)).toEqual({ detail: "Service temporarily unavailable" });
    expect(logged).toContain("ZAKGT_JWT_SECRET is invalid: is only allowed when ENVIRONMENT is development");
  });
});

describe("revoke-sessions and the clock skew (JWT_CLOCK_SKEW_SECONDS, 30 s)", () => {
  const revokeSessions = async (userId: string) => expect((await admin(`/users/${userId}/revoke-sessions`, { json: {} })).status).toBe(200);

  it("a token whose iat runs up to the skew ahead, issued before the revocation, is refused after it", async () => {
    const { userId } = await newUser();
    const ahead = await mintToken({ sub: userId, iat: now() + 25 });
    expect((await meWith(ahead)).status).toBe(200);
    await revokeSessions(userId);
    expect((await meWith(ahead)).status).toBe(401);
  });

  it("a login within the skew after the revocation is refused too; one after the skew has passed works", async () => {
    const user = await newUser();
    const clock = useTestClock();
    await revokeSessions(user.userId);
    // 5 s later: a token issued now may have been issued before the revocation, on a clock 30 s behind.
    await clock.advance(5_000);
    const tooSoon = await meWith(await mintToken({ sub: user.userId, iat: Math.floor(clock.now() / 1000) }));
    expect(tooSoon.status).toBe(401);
    expect(await json(tooSoon)).toEqual({ detail: "Could not validate credentials" });
    // 31 s later: the skew has passed since, and a new token works.
    await clock.advance(26_000);
    expect((await meWith(await mintToken({ sub: user.userId, iat: Math.floor(clock.now() / 1000) }))).status).toBe(200);
  });
});

describe("logout revokes the session at the gateway", () => {
  it("the presented token stops working at once; another session of the user does not", async () => {
    const first = await login();
    const second = await login();
    const logout = await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(first) });
    expect(logout.status).toBe(200);
    expect((await json(logout)).data.logged_out).toBe(true);

    const after = await meWith(first);
    expect(after.status).toBe(401);
    expect(await json(after)).toEqual({ detail: "Could not validate credentials" });
    expect((await meWith(second)).status).toBe(200);
  });

  it("a logged-out token cannot log out again or reach any route", async () => {
    const token = await login();
    await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) });
    expect((await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) })).status).toBe(401);
    expect((await call("/zakgt/api/v1/wallet/balance", { headers: bearer(token) })).status).toBe(401);
  });
});
