import { Hono } from "hono";
import { identify } from "./auth/identify";
import { accessLog } from "./http/access-log";
import { bufferBody, validateBody } from "./http/buffer-body";
import type { AppEnv } from "./http/context";
import { edgeChecks } from "./http/edge-checks";
import { onError } from "./http/on-error";
import { requestId } from "./http/request-id";
import { createAdminApp } from "./keys/admin/app";
import { createDocsApp } from "./openapi/routes";
import { serveAtGateway } from "./keys/gateway-routes";
import { recordKeyUsage } from "./keys/usage-log";
import { admit, rateLimitFields, revokeDeactivatedUser, revokePresentedSession } from "./limits/admit";
import { settleGeneration } from "./limits/generation-settle";
import { routeRequest } from "./products/route-request";
import { proxyHandler } from "./proxy/handler";
import { zskyJobs } from "./results/zsky-jobs";

/**
 * The request pipeline, in order (see ../shared/DESIGN.md §1):
 * edge (request id, log, settings, HTTPS, body size) -> route -> identify -> usage record
 * (after the response) -> body read and validated -> admit (one guard call, or a token of
 * the guard's lease: credential, limits, allowances) -> RateLimit fields -> session effects -> ZSky jobs (outer: sees the
 * settled answer) and settlement (inner: sees the origin's own answer) -> zgate's own
 * endpoints, or forward to the origin.
 */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.use("*", requestId, accessLog, edgeChecks);
  app.route("/admin/v1", createAdminApp());
  app.route("/", createDocsApp());
  app.all(
    "*",
    routeRequest,
    identify,
    recordKeyUsage,
    bufferBody,
    validateBody,
    admit,
    rateLimitFields,
    revokePresentedSession,
    revokeDeactivatedUser,
    zskyJobs,
    settleGeneration,
    serveAtGateway,
    proxyHandler,
  );
  app.onError(onError);
  return app;
}
