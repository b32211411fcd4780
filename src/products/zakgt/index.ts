import { defineProduct } from "../define";
import type { Product, RouteDef } from "../types";
import { createBody, createDeveloperKey, developerKeyUsage, listDeveloperKeys, revokeDeveloperKey } from "./developer-keys";
import {
  created,
  ok,
  ZakgtError,
  ZakgtKeyCreated,
  ZakgtKeyList,
  ZakgtKeyRevoked,
  ZakgtKeyUsage,
  ZakgtLoginRequest,
  ZakgtRefreshRequest,
  ZakgtTokens,
} from "./openapi";
import { zakgtSettings } from "./settings";

/** ZakGT (`zakgt-api.txt`, docs/contracts.md): JWT sessions or `zak_live_` keys, `{"detail"}` errors. */
const v1 = "/api/v1";
// ZakGT's key endpoints validate bodies and queries (422), cursors (400) and ownership (404).
const keyErrors = [400, 404, 422];

const routes: RouteDef[] = [
  // Authentication: the five ways in are public; logout needs the session it ends.
  {
    name: "auth.login",
    method: "POST",
    path: `${v1}/auth/login`,
    auth: "public",
    json: true,
    doc: ok("Log in with email and password. Returns access and refresh tokens.", ZakgtTokens, ZakgtLoginRequest),
  },
  {
    name: "auth.register",
    method: "POST",
    path: `${v1}/auth/register`,
    auth: "public",
    json: true,
    doc: created("Register a new user account."),
  },
  {
    name: "auth.refresh",
    method: "POST",
    path: `${v1}/auth/refresh`,
    auth: "public",
    json: true,
    doc: ok("Exchange a refresh token for a new access token.", ZakgtTokens, ZakgtRefreshRequest),
  },
  {
    name: "auth.forgot_password",
    method: "POST",
    path: `${v1}/auth/forgot-password`,
    auth: "public",
    json: true,
    doc: ok("Request a password reset email."),
  },
  {
    name: "auth.reset_password",
    method: "POST",
    path: `${v1}/auth/reset-password`,
    auth: "public",
    json: true,
    doc: ok("Set a new password using a reset token."),
  },
  {
    name: "auth.logout",
    method: "POST",
    path: `${v1}/auth/logout`,
    auth: "required",
    json: true,
    revokesSession: true,
    doc: ok("Invalidate the current session token (also refused at the gateway at once)."),
  },

  {
    name: "users.me.get",
    method: "GET",
    path: `${v1}/users/me`,
    auth: "required",
    doc: ok("Get the current authenticated user's profile data."),
  },
  {
    name: "users.me.update",
    method: "PUT",
    path: `${v1}/users/me`,
    auth: "required",
    json: true,
    doc: ok("Update profile fields (display name, bio, links)."),
  },
  {
    name: "users.me.deactivate",
    method: "DELETE",
    path: `${v1}/users/me`,
    auth: "required",
    deactivatesUser: true,
    doc: ok("Deactivate the current user's account (every key and session is revoked at the gateway)."),
  },
  {
    name: "users.me.stats",
    method: "GET",
    path: `${v1}/users/me/stats`,
    auth: "required",
    doc: ok("Get platform activity stats for the current user."),
  },
  { name: "users.get", method: "GET", path: `${v1}/users/{user_id}`, auth: "required", doc: ok("Get a public user profile by ID.") },

  {
    name: "wallet.balance",
    method: "GET",
    path: `${v1}/wallet/balance`,
    auth: "required",
    doc: ok("Get the current coin balance for the authenticated user."),
  },
  {
    name: "wallet.transactions",
    method: "GET",
    path: `${v1}/wallet/transactions`,
    auth: "required",
    doc: ok("List all coin transaction history with pagination."),
  },
  {
    name: "wallet.topup.stripe",
    method: "POST",
    path: `${v1}/wallet/topup/stripe`,
    auth: "required",
    json: true,
    doc: ok("Initiate a Stripe top-up session."),
  },
  {
    name: "wallet.topup.paypal",
    method: "POST",
    path: `${v1}/wallet/topup/paypal`,
    auth: "required",
    json: true,
    doc: ok("Initiate a PayPal top-up session."),
  },
  {
    name: "wallet.topup.aba",
    method: "POST",
    path: `${v1}/wallet/topup/aba`,
    auth: "required",
    json: true,
    doc: ok("Initiate an ABA Pay top-up request."),
  },

  {
    name: "mart.products.list",
    method: "GET",
    path: `${v1}/mart/products`,
    auth: "required",
    catalogue: true,
    doc: ok("List marketplace products with filtering and sorting (edge-cached)."),
  },
  {
    name: "mart.products.get",
    method: "GET",
    path: `${v1}/mart/products/{id}`,
    auth: "required",
    catalogue: true,
    doc: ok("Get a single product by ID (edge-cached)."),
  },
  {
    name: "mart.products.create",
    method: "POST",
    path: `${v1}/mart/products`,
    auth: "required",
    json: true,
    doc: created("Create a new marketplace listing (requires shop)."),
  },
  {
    name: "mart.products.update",
    method: "PUT",
    path: `${v1}/mart/products/{id}`,
    auth: "required",
    json: true,
    doc: ok("Update a listing you own."),
  },
  {
    name: "mart.products.delete",
    method: "DELETE",
    path: `${v1}/mart/products/{id}`,
    auth: "required",
    doc: ok("Delete a listing you own."),
  },
  {
    name: "mart.products.purchase",
    method: "POST",
    path: `${v1}/mart/products/{id}/purchase`,
    auth: "required",
    json: true,
    doc: ok("Purchase a product using ZakGT Coins."),
  },

  {
    name: "live.sessions.list",
    method: "GET",
    path: `${v1}/live/sessions`,
    auth: "required",
    doc: ok("List currently active live streams."),
  },
  {
    name: "live.sessions.get",
    method: "GET",
    path: `${v1}/live/sessions/{id}`,
    auth: "required",
    doc: ok("Get details for a specific live stream session."),
  },
  {
    name: "live.sessions.start",
    method: "POST",
    path: `${v1}/live/sessions/start`,
    auth: "required",
    json: true,
    doc: ok("Start a new live stream session."),
  },
  {
    name: "live.sessions.end",
    method: "POST",
    path: `${v1}/live/sessions/{id}/end`,
    auth: "required",
    json: true,
    doc: ok("End your live stream session."),
  },

  {
    name: "tools.list",
    method: "GET",
    path: `${v1}/tools/`,
    auth: "required",
    catalogue: true,
    doc: ok("List all available tools with categories and access requirements (edge-cached)."),
  },
  {
    name: "tools.mine",
    method: "GET",
    path: `${v1}/tools/my-tools`,
    auth: "required",
    doc: ok("List all tools the current user has access to."),
  },
  {
    name: "tools.get",
    method: "GET",
    path: `${v1}/tools/{tool_id}`,
    auth: "required",
    catalogue: true,
    doc: ok("Get detailed info about a specific tool (edge-cached)."),
  },
  {
    name: "tools.purchase",
    method: "POST",
    path: `${v1}/tools/{tool_id}/purchase`,
    auth: "required",
    json: true,
    doc: ok("Purchase access to a specific tool."),
  },

  {
    name: "ai.chat",
    method: "POST",
    path: `${v1}/ai/chat`,
    auth: "required",
    json: true,
    doc: ok("Send a message to ZakGT AI and receive a reply. 30 per minute per user, and per access key."),
  },
  {
    name: "ai.studio",
    method: "POST",
    path: `${v1}/ai/studio`,
    auth: "required",
    json: true,
    doc: ok("Generate an image (Z7 Studio tier)."),
  },
  { name: "ai.usage_history", method: "GET", path: `${v1}/ai/usage/history`, auth: "required", doc: ok("Get your AIM usage history.") },

  // Personal access keys are zgate's own: answered at the edge, for signed-in users only.
  {
    name: "developer.keys.create",
    method: "POST",
    path: `${v1}/developer/api-keys`,
    auth: "required",
    json: true,
    sessionOnly: true,
    serve: createDeveloperKey,
    doc: {
      ...created("Create a personal access key (zak_live_…). The secret is shown once only.", ZakgtKeyCreated, createBody),
      errors: [...keyErrors, 409],
    },
  },
  {
    name: "developer.keys.list",
    method: "GET",
    path: `${v1}/developer/api-keys`,
    auth: "required",
    sessionOnly: true,
    serve: listDeveloperKeys,
    doc: { ...ok("List your keys (prefix + status, never the secret).", ZakgtKeyList), errors: keyErrors },
  },
  {
    name: "developer.keys.revoke",
    method: "DELETE",
    path: `${v1}/developer/api-keys/{id}`,
    auth: "required",
    sessionOnly: true,
    serve: revokeDeveloperKey,
    doc: { ...ok("Revoke a key immediately: it stops working at once.", ZakgtKeyRevoked), errors: keyErrors },
  },
  {
    name: "developer.keys.usage",
    method: "GET",
    path: `${v1}/developer/api-keys/{id}/usage`,
    auth: "required",
    sessionOnly: true,
    serve: developerKeyUsage,
    doc: { ...ok("The per-call usage logged for one key (cursor-paginated).", ZakgtKeyUsage), errors: keyErrors },
  },
];

// zakgt-api.txt "Rate Limits": AI chat 30/min per user for session calls and, for
// `zak_live_` calls, 30/min per access key, so one key can never exhaust another's
// allowance; the standard limit likewise per user for sessions and per key for keys
// (policies of one name: overrides and plans change both); the public auth endpoints a
// per-client-IP limit against credential stuffing. Refresh has its own, larger per-IP
// window: every signed-in client behind one address calls it as its access tokens
// expire, and those calls must not use up that address's logins. Ending a credential
// (logout, revoking a key, deleting the account) counts only in a small window of the
// credential presented, never in `standard`: a busy or leaked credential must not be
// able to keep itself, or another one, alive. "Rate limits follow your account tier":
// the plan comes from the account or the session's tier claim, and a user's keys take the
// tier the user's sessions present (policies.ts planOf, the guard's noteSessionTier).
const REVOCATION_ROUTES = ["auth.logout", "developer.keys.revoke", "users.me.deactivate"];

const limits: Product["limits"] = {
  windows: [
    { name: "ai_chat_user", subject: "user", limit: 30, windowSeconds: 60, routes: ["ai.chat"], via: "jwt" },
    { name: "ai_chat_key", subject: "key", limit: 30, windowSeconds: 60, routes: ["ai.chat"], via: "key" },
    { name: "standard", subject: "user", limit: 300, windowSeconds: 60, via: "jwt", exceptRoutes: REVOCATION_ROUTES },
    { name: "standard", subject: "key", limit: 300, windowSeconds: 60, via: "key", exceptRoutes: REVOCATION_ROUTES },
    { name: "revocation", subject: "credential", limit: 20, windowSeconds: 60, routes: REVOCATION_ROUTES },
    {
      name: "auth_ip",
      subject: "ip",
      limit: 20,
      windowSeconds: 60,
      routes: ["auth.login", "auth.register", "auth.forgot_password", "auth.reset_password"],
    },
    { name: "auth_refresh_ip", subject: "ip", limit: 60, windowSeconds: 60, routes: ["auth.refresh"] },
  ],
  plans: { enterprise: { standard: { limit: 3000 } } },
};

export const zakgt = defineProduct({
  id: "zakgt",
  name: "ZakGT",
  describes: "auth, users, wallet, marketplace, live, tools, AI, developer keys",
  pathPrefix: "/zakgt",
  defaultHosts: ["api.zakgt.net"],
  keyPrefixes: { live: "zak_live_", test: "zak_test_" },
  credential: "authorization-bearer",
  acceptsJwt: true,
  accountIsUser: true,
  invalidInput: "UNPROCESSABLE",
  wrongMediaType: "UNSUPPORTED_MEDIA_TYPE",
  unauthorized: { missing: "Not authenticated", invalid: "Could not validate credentials" },
  envelope: (_code, message) => ({ detail: message }),
  errorSchema: ZakgtError,
  referenceStatuses: [400, 401, 403, 404, 422, 429, 500],
  securitySchemes: {
    ZakgtAccessToken: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "ZakGT access token from /auth/login" },
    ZakgtAccessKey: { type: "http", scheme: "bearer", description: "ZakGT personal access key `zak_live_…`" },
  },
  routes,
  limits,
  settings: zakgtSettings,
});
