import { Hono } from "hono";
import { identify } from "./auth/identify";
import { accessLog } from "./http/access-log";
import type { AppEnv } from "./http/context";
import { edgeChecks } from "./http/edge-checks";
import { onError } from "./http/on-error";
import { requestId } from "./http/request-id";
import { admit, revokePresentedSession } from "./limits/admit";
import { routeRequest } from "./products/route-request";
import { proxyHandler } from "./proxy/handler";

/**
 * The request pipeline, in order (see ../shared/DESIGN.md §1):
 * edge (request id, log, settings, HTTPS, body size) -> route -> identify -> admit -> forward.
 */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.use("*", requestId, accessLog, edgeChecks);
  app.all("*", routeRequest, identify, admit, revokePresentedSession, proxyHandler);
  app.onError(onError);
  return app;
}
