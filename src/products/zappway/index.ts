import { ok } from "../../openapi/operation-doc";
import { defineProduct } from "../define";
import type { OperationDoc, Product, RouteDef } from "../types";
import { ZappwayError, ZappwaySuccess, ZAPPWAY_ENDPOINTS } from "./openapi";

/**
 * ZappWay (`zappway-api-keys.md`, docs/contracts.md): bearer keys,
 * `{"error": {"code", "message"}}` errors. The reference names its modules without
 * listing every endpoint, so each module prefix is routed whole (any method, key
 * required), under both the versioned `/api/v1` and the plain `/api` base.
 */
const modules = ["agents", "datastores", "datasources", "conversations"] as const;

const routes: RouteDef[] = modules.flatMap((m): RouteDef[] => {
  const doc: OperationDoc = {
    ...ok(`The ${m} module (any method, any path under it).`, ZappwaySuccess),
    collection: `The ${m} module itself (GET lists the organization's ${m}).`,
    endpoints: ZAPPWAY_ENDPOINTS[m],
  };
  return [
    { name: `${m}`, method: "ANY", path: `/api/v1/${m}/*`, auth: "required", doc },
    {
      name: `${m}.unversioned`,
      method: "ANY",
      path: `/api/${m}/*`,
      auth: "required",
      doc: { ...doc, summary: `The ${m} module on the unversioned /api base.` },
    },
  ];
});

// zappway-api-keys.md "Rate Limits": Free 60 (the base), Pro 300 per minute. A plan is
// the organization's, so its rate is one window all the organization's keys share.
// Enterprise starts at Pro's rate; the agreed rate is the organization's own limit
// (admin `PUT /accounts/zappway/{account}/plan`), and a key's own override still caps
// that key on the shared window.
const limits: Product["limits"] = {
  windows: [{ name: "plan_rate", subject: "account", limit: 60, windowSeconds: 60 }],
  plans: { pro: { plan_rate: { limit: 300 } }, enterprise: { plan_rate: { limit: 300 } } },
  defaultPlan: "free",
};

export const zappway = defineProduct({
  id: "zappway",
  name: "ZappWay",
  describes: "agents, datastores, datasources, conversations",
  pathPrefix: "/zappway",
  defaultHosts: ["app.zappway.ai"],
  keyPrefixes: { live: "zw_live_" },
  credential: "authorization-bearer",
  acceptsJwt: false,
  invalidInput: "BAD_REQUEST",
  wrongMediaType: "UNSUPPORTED_MEDIA_TYPE",
  unauthorized: { missing: "Missing API key.", invalid: "Invalid or expired API key." },
  envelope: (code, message) => ({ error: { code, message } }),
  errorSchema: ZappwayError,
  referenceStatuses: [400, 401, 403, 404, 429, 500],
  securitySchemes: { ZappwayApiKey: { type: "http", scheme: "bearer", description: "`zw_live_…`" } },
  routes,
  limits,
});
