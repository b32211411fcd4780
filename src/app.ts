import { Hono } from "hono";
import { servesGatewaySurface } from "./config/gateway-hosts";
import type { Env } from "./env";
import { identify } from "./identify/identify";
import { accessLog } from "./edge/access-log";
import { bufferBody, validateBody } from "./http/buffer-body";
import type { AppEnv } from "./http/context";
import { edgeChecks } from "./edge/edge-checks";
import { onError } from "./http/on-error";
import { requestId } from "./edge/request-id";
import { createConsoleApp } from "./console/app";
import { createAdminApp } from "./admin/app";
import { createDocsApp } from "./openapi/routes";
import { createHomeApp } from "./home/app";
import { createSecurityApp } from "./security/app";
import { serveAtGateway } from "./forward/serve-at-gateway";
import { recordKeyUsage } from "./usage/usage-log";
import { admit, rateLimitFields } from "./admit/admit";
import { revokeDeactivatedUser, revokePresentedSession } from "./identify/session-effects";
import { routeRequest } from "./route/route-request";
import { proxyHandler } from "./forward/handler";
import { settle } from "./forward/settle";
import { requestUrl } from "./http/request-url";
import { productOfPrefix } from "./products";
import { asMiddleware, pipeline } from "./http/pipeline";
import { ProductContext } from "./http/product-context";

/** Every request's first stages: request id, access log, settings, HTTPS, body size. */
const EDGE_STAGES = [requestId, accessLog, edgeChecks];

/**
 * The request pipeline past the edge, in order (why it is shaped so: docs/design.md,
 * section 1): route -> identify -> usage record (after the response) -> body read and
 * validated -> admit (one guard call, or a token of the guard's lease: credential, limits,
 * allowances) -> RateLimit fields -> session effects -> the route's settle step (once the
 * answer is made: ZSky's jobs, then results) -> the route's own handler at zgate, or
 * forward to the origin.
 */
const PRODUCT_STAGES = [
  routeRequest,
  identify,
  recordKeyUsage,
  bufferBody,
  validateBody,
  admit,
  rateLimitFields,
  revokePresentedSession,
  revokeDeactivatedUser,
  settle,
  serveAtGateway,
  proxyHandler,
];

/**
 * Two ways in, one pipeline: a product host (`api.zakgt.net`, ...) answers exactly what its
 * platform's contract says, so zgate's own surface (admin API, docs, OpenAPI, `/` and the
 * health check) and the security console are mounted only on the Hono app for gateway
 * hosts, and can never shadow an upstream path.
 */
export function createApp() {
  // A product's calls run every stage in one pipeline (http/pipeline.ts: no async step per stage).
  const onProductHost = pipeline(onError, ...EDGE_STAGES, ...PRODUCT_STAGES);
  // zgate's own surface runs the edge stages as Hono middleware before its sub-apps' routes.
  const gateway = new Hono<AppEnv>();
  gateway.use("*", ...EDGE_STAGES.map(asMiddleware));
  gateway.route("/admin/v1", createAdminApp());
  gateway.route("/security/v1", createSecurityApp());
  // The console's own admin calls go through this same app, as any client's would.
  gateway.route(
    "/admin/",
    createConsoleApp((request, env, ctx) => gateway.fetch(request, env, ctx)),
  );
  gateway.route("/", createDocsApp());
  gateway.route("/", createHomeApp());
  gateway.all("*", pipeline(onError, ...PRODUCT_STAGES));
  gateway.onError(onError);
  return {
    fetch: (request: Request, env: Env, ctx: ExecutionContext) => {
      const url = requestUrl(request);
      // A path under a product's prefix is that product's on a gateway host too (no path of
      // zgate's own lies under one: products/completeness.ts), and runs the same pipeline
      // without the gateway app's router, which would match it against every route of
      // zgate's own surface first.
      const own = !productOfPrefix(url.pathname) && servesGatewaySurface(url, env);
      return own ? gateway.fetch(request, env, ctx) : answerProductCall(onProductHost, request, env, ctx);
    },
  };
}

/**
 * A product call, through the pipeline on a context of its own (http/product-context.ts),
 * answered as Hono answers its apps' requests: an error that escapes the pipeline gets
 * `onError`'s answer, and a HEAD request its GET answer without the body.
 */
function answerProductCall(
  run: (c: ProductContext) => Promise<void>,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
): Promise<Response> {
  const c = new ProductContext(request, env, ctx);
  // Not an async function: a call holds its suspended frame while its origin answers.
  return run(c).then(
    () => (request.method === "HEAD" ? new Response(null, c.res) : c.res),
    (err: unknown) => {
      if (!(err instanceof Error)) throw err;
      return onError(err, c);
    },
  );
}
