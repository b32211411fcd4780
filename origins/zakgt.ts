import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWK } from "jose";
import { json, readJson, gatewayTrust, withSimulatorHooks, type GatewayIdentity, type Handler } from "./common";

/**
 * ZakGT origin simulator: login/refresh/logout issuing real ES256 JWTs (JWKS at
 * `/.well-known/jwks.json`), users/me, catalogue reads and marketplace listing writes, AI chat.
 * Demo user: demo@zakgt.test / demo-password.
 */
export interface ZakgtSimulatorOptions {
  /** The gateway's published keys (its JWK Set): every one it may sign with, old and new during a rotation. */
  assertionKeys: JSONWebKeySet;
  issuer: string;
  audience: string;
  accessTokenSeconds?: number;
}

// `tier`: the account tier each access token names in its `tier` claim.
const USERS = [
  { id: "usr_demo", email: "demo@zakgt.test", password: "demo-password", display_name: "Demo User", tier: "free" },
  { id: "usr_other", email: "other@zakgt.test", password: "other-password", display_name: "Other User", tier: "free" },
  {
    id: "usr_enterprise",
    email: "enterprise@zakgt.test",
    password: "enterprise-password",
    display_name: "Enterprise User",
    tier: "enterprise",
  },
];

const TOOLS = [
  { id: "tool_writer", name: "Z Writer", category: "text", access: "free" },
  { id: "tool_studio", name: "Z7 Studio", category: "image", access: "paid" },
];

const PRODUCTS = [
  { id: "prod_1", title: "Neon preset pack", price_coins: 120 },
  { id: "prod_2", title: "Voice clone add-on", price_coins: 900 },
];

export async function createZakgtSimulator(options: ZakgtSimulatorOptions): Promise<Handler> {
  const kid = `sim-${crypto.randomUUID().slice(0, 8)}`;
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" } as JWK] };
  const users = USERS.map((u) => ({ ...u }));
  const products = PRODUCTS.map((p) => ({ ...p }));
  const refreshTokens = new Map<string, string>();
  const ttl = options.accessTokenSeconds ?? 900;
  // Counts catalogue responses so tests can tell an edge-cache hit from an origin call.
  let catalogueServed = 0;

  async function accessToken(claims: Record<string, unknown> & { sub: string }) {
    const now = Math.floor(Date.now() / 1000);
    const all = { jti: crypto.randomUUID(), iat: now, exp: now + ttl, iss: options.issuer, aud: options.audience, ...claims };
    return new SignJWT(Object.fromEntries(Object.entries(all).filter(([, v]) => v !== null)))
      .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
      .sign(privateKey);
  }

  async function tokenPair(userId: string) {
    const refresh = `rt_${crypto.randomUUID().replaceAll("-", "")}`;
    refreshTokens.set(refresh, userId);
    return {
      status: "ok",
      data: {
        access_token: await accessToken({ sub: userId, tier: users.find((u) => u.id === userId)?.tier }),
        refresh_token: refresh,
        token_type: "bearer",
        expires_in: ttl,
      },
      request_id: crypto.randomUUID(),
    };
  }

  const ok = (data: unknown, request: Request, headers: Record<string, string> = {}, status = 200) =>
    json({ status: "ok", data, request_id: request.headers.get("x-request-id") }, status, headers);

  // A catalogue read is the same for every caller, so it says so (`public`) and carries no
  // request id. Test hooks: `X-Sim-Per-Caller: 1` answers for this caller alone (names the
  // viewer, echoes the request id, no caching fields); `X-Sim-Cache-Headers: <JSON>` sets
  // the caching fields instead.
  const catalogue = (data: Record<string, unknown>, request: Request, identity: GatewayIdentity) => {
    const custom = request.headers.get("x-sim-cache-headers");
    if (request.headers.get("x-sim-per-caller") === "1") {
      return ok({ ...data, served: ++catalogueServed, viewer: identity.user }, request, custom ? JSON.parse(custom) : {});
    }
    const headers = custom ? JSON.parse(custom) : { "Cache-Control": "public, max-age=60" };
    return json({ status: "ok", data: { ...data, served: ++catalogueServed } }, 200, headers);
  };

  const trusted = gatewayTrust({ assertionKeys: options.assertionKeys, audience: "zakgt" });
  return withSimulatorHooks(async (request) => {
    const url = new URL(request.url);
    const route = `${request.method} ${url.pathname.replace(/\/+$/, "") || "/"}`;

    if (route === "GET /.well-known/jwks.json") return json(jwks);
    // Test-only: mint a token with chosen claims, signed by this simulator's real key.
    if (route === "POST /__sim/token") {
      // A claim set to null is left out of the token.
      const claims = (await readJson(request)) ?? {};
      return json({ token: await accessToken({ sub: "usr_demo", ...claims }) });
    }
    if (route === "POST /api/v1/auth/login") {
      const body = await readJson(request);
      if (!body || typeof body.email !== "string" || typeof body.password !== "string") {
        return json({ detail: "email and password are required" }, 422);
      }
      const user = users.find((u) => u.email === body.email && u.password === body.password);
      if (!user) return json({ detail: "Invalid email or password" }, 401);
      return json(await tokenPair(user.id));
    }
    if (route === "POST /api/v1/auth/register") {
      const body = await readJson(request);
      if (typeof body?.email !== "string" || !body.email.includes("@"))
        return json({ detail: "email: value is not a valid email address" }, 422);
      if (typeof body.password !== "string" || body.password.length < 8) return json({ detail: "password: at least 8 characters" }, 422);
      if (users.some((u) => u.email === body.email)) return json({ detail: "Email already registered" }, 400);
      const user = {
        id: `usr_${crypto.randomUUID().slice(0, 8)}`,
        email: body.email,
        password: body.password,
        display_name: body.email,
        tier: "free",
      };
      users.push(user);
      return json({ status: "ok", data: { id: user.id, email: user.email } }, 201);
    }
    if (route === "POST /api/v1/auth/forgot-password") {
      // Same answer whether or not the account exists.
      return json({ status: "ok", data: { sent: true } });
    }
    if (route === "POST /api/v1/auth/reset-password") {
      return json({ detail: "Invalid or expired reset token" }, 400);
    }
    if (route === "POST /api/v1/auth/refresh") {
      const body = await readJson(request);
      const userId = typeof body?.refresh_token === "string" ? refreshTokens.get(body.refresh_token) : undefined;
      if (!userId) return json({ detail: "Invalid refresh token" }, 401);
      refreshTokens.delete(body!.refresh_token as string);
      return json(await tokenPair(userId));
    }

    const identity = await trusted(request);
    if (!identity) return json({ detail: "Untrusted gateway identity" }, 401);

    switch (route) {
      case "POST /api/v1/auth/logout":
        return ok({ logged_out: true }, request);
      case "DELETE /api/v1/users/me":
        return ok({ deactivated: true }, request);
      case "GET /api/v1/users/me": {
        const user = users.find((u) => u.id === identity.user);
        if (!user) return json({ detail: "User not found" }, 404);
        return ok({ id: user.id, email: user.email, display_name: user.display_name }, request);
      }
      case "GET /api/v1/tools":
        return catalogue({ tools: TOOLS }, request, identity);
      case "GET /api/v1/tools/my-tools":
        return ok({ tools: TOOLS.slice(0, 1), user: identity.user }, request, { "Cache-Control": "private, max-age=60" });
      case "GET /api/v1/mart/products":
        return catalogue({ products, query: url.search }, request, identity);
      case "POST /api/v1/mart/products": {
        const body = await readJson(request);
        if (typeof body?.title !== "string") return json({ detail: "title: field required" }, 422);
        const created = { id: `prod_${crypto.randomUUID().slice(0, 8)}`, title: body.title, price_coins: Number(body.price_coins ?? 0) };
        products.push(created);
        return ok(created, request, {}, 201);
      }
      case "POST /api/v1/ai/chat": {
        const body = await readJson(request);
        if (typeof body?.message !== "string") return json({ detail: "message: field required" }, 422);
        return ok({ reply: `ZakGT AI (simulated): ${body.message}`, tier: "Z0", aim_spent: 0 }, request);
      }
    }
    const tool = /^GET \/api\/v1\/tools\/([\w-]+)$/.exec(route);
    if (tool) {
      const found = TOOLS.find((t) => t.id === tool[1]);
      return found ? catalogue(found, request, identity) : json({ detail: "Tool not found" }, 404);
    }
    const product = /^(GET|PUT|DELETE) \/api\/v1\/mart\/products\/([\w-]+)$/.exec(route);
    if (product) {
      const found = products.find((p) => p.id === product[2]);
      if (!found) return json({ detail: "Product not found" }, 404);
      if (product[1] === "GET") return catalogue(found, request, identity);
      if (product[1] === "DELETE") {
        products.splice(products.indexOf(found), 1);
        return ok({ deleted: true }, request);
      }
      const body = await readJson(request);
      if (typeof body?.title === "string") found.title = body.title;
      if (typeof body?.price_coins === "number") found.price_coins = body.price_coins;
      return ok(found, request);
    }
    return json({ detail: "Not Found" }, 404);
  });
}
