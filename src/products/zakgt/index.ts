import type { Product, RouteDef } from "../types";

/** ZakGT (`zakgt-api.txt`, docs/contracts.md): JWT sessions or `zak_live_` keys, `{"detail"}` errors. */
const v1 = "/api/v1";

const routes: RouteDef[] = [
  // Authentication: the five ways in are public; logout needs the session it ends.
  { name: "auth.login", method: "POST", path: `${v1}/auth/login`, auth: "public", json: true },
  { name: "auth.register", method: "POST", path: `${v1}/auth/register`, auth: "public", json: true },
  { name: "auth.refresh", method: "POST", path: `${v1}/auth/refresh`, auth: "public", json: true },
  { name: "auth.forgot_password", method: "POST", path: `${v1}/auth/forgot-password`, auth: "public", json: true },
  { name: "auth.reset_password", method: "POST", path: `${v1}/auth/reset-password`, auth: "public", json: true },
  { name: "auth.logout", method: "POST", path: `${v1}/auth/logout`, auth: "required", json: true, revokesSession: true },

  { name: "users.me.get", method: "GET", path: `${v1}/users/me`, auth: "required" },
  { name: "users.me.update", method: "PUT", path: `${v1}/users/me`, auth: "required", json: true },
  { name: "users.me.deactivate", method: "DELETE", path: `${v1}/users/me`, auth: "required", deactivatesUser: true },
  { name: "users.me.stats", method: "GET", path: `${v1}/users/me/stats`, auth: "required" },
  { name: "users.get", method: "GET", path: `${v1}/users/{user_id}`, auth: "required" },

  { name: "wallet.balance", method: "GET", path: `${v1}/wallet/balance`, auth: "required" },
  { name: "wallet.transactions", method: "GET", path: `${v1}/wallet/transactions`, auth: "required" },
  { name: "wallet.topup.stripe", method: "POST", path: `${v1}/wallet/topup/stripe`, auth: "required", json: true },
  { name: "wallet.topup.paypal", method: "POST", path: `${v1}/wallet/topup/paypal`, auth: "required", json: true },
  { name: "wallet.topup.aba", method: "POST", path: `${v1}/wallet/topup/aba`, auth: "required", json: true },

  { name: "mart.products.list", method: "GET", path: `${v1}/mart/products`, auth: "required", catalogue: true },
  { name: "mart.products.get", method: "GET", path: `${v1}/mart/products/{id}`, auth: "required", catalogue: true },
  { name: "mart.products.create", method: "POST", path: `${v1}/mart/products`, auth: "required", json: true },
  { name: "mart.products.update", method: "PUT", path: `${v1}/mart/products/{id}`, auth: "required", json: true },
  { name: "mart.products.delete", method: "DELETE", path: `${v1}/mart/products/{id}`, auth: "required" },
  { name: "mart.products.purchase", method: "POST", path: `${v1}/mart/products/{id}/purchase`, auth: "required", json: true },

  { name: "live.sessions.list", method: "GET", path: `${v1}/live/sessions`, auth: "required" },
  { name: "live.sessions.get", method: "GET", path: `${v1}/live/sessions/{id}`, auth: "required" },
  { name: "live.sessions.start", method: "POST", path: `${v1}/live/sessions/start`, auth: "required", json: true },
  { name: "live.sessions.end", method: "POST", path: `${v1}/live/sessions/{id}/end`, auth: "required", json: true },

  { name: "tools.list", method: "GET", path: `${v1}/tools/`, auth: "required", catalogue: true },
  { name: "tools.mine", method: "GET", path: `${v1}/tools/my-tools`, auth: "required" },
  { name: "tools.get", method: "GET", path: `${v1}/tools/{tool_id}`, auth: "required", catalogue: true },
  { name: "tools.purchase", method: "POST", path: `${v1}/tools/{tool_id}/purchase`, auth: "required", json: true },

  { name: "ai.chat", method: "POST", path: `${v1}/ai/chat`, auth: "required", json: true },
  { name: "ai.studio", method: "POST", path: `${v1}/ai/studio`, auth: "required", json: true },
  { name: "ai.usage_history", method: "GET", path: `${v1}/ai/usage/history`, auth: "required" },

  // Personal access keys are zgate's own: answered at the edge, for signed-in users only.
  {
    name: "developer.keys.create",
    method: "POST",
    path: `${v1}/developer/api-keys`,
    auth: "required",
    json: true,
    gateway: true,
    sessionOnly: true,
  },
  { name: "developer.keys.list", method: "GET", path: `${v1}/developer/api-keys`, auth: "required", gateway: true, sessionOnly: true },
  {
    name: "developer.keys.revoke",
    method: "DELETE",
    path: `${v1}/developer/api-keys/{id}`,
    auth: "required",
    gateway: true,
    sessionOnly: true,
  },
  {
    name: "developer.keys.usage",
    method: "GET",
    path: `${v1}/developer/api-keys/{id}/usage`,
    auth: "required",
    gateway: true,
    sessionOnly: true,
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

export const zakgt: Product = {
  id: "zakgt",
  pathPrefix: "/zakgt",
  hostsSetting: "ZAKGT_HOSTS",
  originSetting: "ORIGIN_ZAKGT",
  keyPrefixes: { live: "zak_live_", test: "zak_test_" },
  credential: "authorization-bearer",
  acceptsJwt: true,
  invalidInput: "UNPROCESSABLE",
  wrongMediaType: "UNSUPPORTED_MEDIA_TYPE",
  unauthorized: { missing: "Not authenticated", invalid: "Could not validate credentials" },
  envelope: (_code, message) => ({ detail: message }),
  routes,
  limits,
};
