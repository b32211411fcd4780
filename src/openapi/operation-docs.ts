import type { z } from "@hono/zod-openapi";
import { createBody as ZakgtKeyCreateRequest } from "../products/zakgt/developer-keys";
import { ImageRequest, VideoRequest } from "../products/zsky/index";
import type { ProductId } from "../products/types";
import {
  ZakgtKeyCreated,
  ZakgtKeyList,
  ZakgtKeyRevoked,
  ZakgtKeyUsage,
  ZakgtLoginRequest,
  ZakgtRefreshRequest,
  ZakgtSuccess,
  ZakgtTokens,
  ZappwayAgentQuery,
  ZappwayDatastoreUpsert,
  ZappwaySuccess,
  ZskyJob,
  ZskyJobAccepted,
  ZskyRotated,
  ZskyUsage,
} from "./schemas";

/**
 * What the OpenAPI document says of each route beyond its RouteDef: the reference's
 * one-line summary, the request body where the reference or zgate defines one, and the
 * success response. Every route of every product must have an entry (the document
 * builder refuses to build otherwise), so a new route cannot go undocumented.
 */
export interface OperationDoc {
  summary: string;
  request?: z.ZodType;
  success: { status: 200 | 201 | 204; schema?: z.ZodType; binary?: string };
  /** A module prefix route: what the module's own path does (e.g. `GET /api/v1/agents` lists). */
  collection?: string;
  /** A module prefix route: the endpoints under it that the reference names, with their parameters. */
  endpoints?: { name: string; method: "get" | "post"; path: string; summary: string; request?: z.ZodType }[];
}

const ok = (summary: string, schema: z.ZodType = ZakgtSuccess, request?: z.ZodType): OperationDoc => ({
  summary,
  request,
  success: { status: 200, schema },
});
const created = (summary: string, schema: z.ZodType = ZakgtSuccess, request?: z.ZodType): OperationDoc => ({
  summary,
  request,
  success: { status: 201, schema },
});

// The endpoints zappway-api-keys.md names under its modules ("Common Use Cases"). Their
// bodies go to the origin as they are: the schemas are the reference's examples.
const ZAPPWAY_ENDPOINTS: Record<string, OperationDoc["endpoints"]> = {
  agents: [
    {
      name: "query",
      method: "post",
      path: "/{agentId}/query",
      summary: "Send a message to an agent and receive its answer.",
      request: ZappwayAgentQuery,
    },
    {
      name: "conversations",
      method: "get",
      path: "/{agentId}/conversations",
      summary: "An agent's conversation logs and captured contacts (`?limit=&after=`).",
    },
  ],
  datastores: [
    {
      name: "upsert",
      method: "post",
      path: "/{datastoreId}/upsert",
      summary: "Upsert documents into a datastore.",
      request: ZappwayDatastoreUpsert,
    },
  ],
};

export const OPERATION_DOCS: Record<ProductId, Record<string, OperationDoc>> = {
  zakgt: {
    "auth.login": ok("Log in with email and password. Returns access and refresh tokens.", ZakgtTokens, ZakgtLoginRequest),
    "auth.register": created("Register a new user account."),
    "auth.refresh": ok("Exchange a refresh token for a new access token.", ZakgtTokens, ZakgtRefreshRequest),
    "auth.logout": ok("Invalidate the current session token (also refused at the gateway at once)."),
    "auth.forgot_password": ok("Request a password reset email."),
    "auth.reset_password": ok("Set a new password using a reset token."),
    "users.me.get": ok("Get the current authenticated user's profile data."),
    "users.me.update": ok("Update profile fields (display name, bio, links)."),
    "users.me.deactivate": ok("Deactivate the current user's account (every key and session is revoked at the gateway)."),
    "users.me.stats": ok("Get platform activity stats for the current user."),
    "users.get": ok("Get a public user profile by ID."),
    "wallet.balance": ok("Get the current coin balance for the authenticated user."),
    "wallet.transactions": ok("List all coin transaction history with pagination."),
    "wallet.topup.stripe": ok("Initiate a Stripe top-up session."),
    "wallet.topup.paypal": ok("Initiate a PayPal top-up session."),
    "wallet.topup.aba": ok("Initiate an ABA Pay top-up request."),
    "mart.products.list": ok("List marketplace products with filtering and sorting (edge-cached)."),
    "mart.products.get": ok("Get a single product by ID (edge-cached)."),
    "mart.products.create": created("Create a new marketplace listing (requires shop)."),
    "mart.products.update": ok("Update a listing you own."),
    "mart.products.delete": ok("Delete a listing you own."),
    "mart.products.purchase": ok("Purchase a product using ZakGT Coins."),
    "live.sessions.list": ok("List currently active live streams."),
    "live.sessions.get": ok("Get details for a specific live stream session."),
    "live.sessions.start": ok("Start a new live stream session."),
    "live.sessions.end": ok("End your live stream session."),
    "tools.list": ok("List all available tools with categories and access requirements (edge-cached)."),
    "tools.mine": ok("List all tools the current user has access to."),
    "tools.get": ok("Get detailed info about a specific tool (edge-cached)."),
    "tools.purchase": ok("Purchase access to a specific tool."),
    "ai.chat": ok("Send a message to ZakGT AI and receive a reply. 30 per minute per user, and per access key."),
    "ai.studio": ok("Generate an image (Z7 Studio tier)."),
    "ai.usage_history": ok("Get your AIM usage history."),
    "developer.keys.create": created(
      "Create a personal access key (zak_live_…). The secret is shown once only.",
      ZakgtKeyCreated,
      ZakgtKeyCreateRequest,
    ),
    "developer.keys.list": ok("List your keys (prefix + status, never the secret).", ZakgtKeyList),
    "developer.keys.revoke": ok("Revoke a key immediately: it stops working at once.", ZakgtKeyRevoked),
    "developer.keys.usage": ok("The per-call usage logged for one key (cursor-paginated).", ZakgtKeyUsage),
  },
  zsky: {
    "images.generate": ok("Create an image (text-to-image).", ZskyJobAccepted, ImageRequest),
    "videos.generate": ok("Create a video (text-to-video).", ZskyJobAccepted, VideoRequest),
    "jobs.get": ok("Poll job status; a completed job carries a signed result URL valid 24 hours.", ZskyJob),
    "jobs.purge": { summary: "Purge the result from storage.", success: { status: 204 } },
    "usage.get": ok("Current-month allowance counters.", ZskyUsage),
    "keys.rotate": ok("Issue a new key (shown once) and invalidate the current one.", ZskyRotated),
    "results.download": {
      summary: "Download a result through its signed URL (supports Range and If-None-Match).",
      success: { status: 200, binary: "image/png or video/mp4" },
    },
  },
  zappway: Object.fromEntries(
    ["agents", "datastores", "datasources", "conversations"].flatMap((m) => {
      const module = {
        ...ok(`The ${m} module (any method, any path under it).`, ZappwaySuccess),
        collection: `The ${m} module itself (GET lists the organization's ${m}).`,
        endpoints: ZAPPWAY_ENDPOINTS[m],
      };
      return [
        [m, module],
        [`${m}.unversioned`, { ...module, summary: `The ${m} module on the unversioned /api base.` }],
      ];
    }),
  ),
};
