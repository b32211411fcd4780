import type { OpenAPIRoute, RouteConfig } from "@hono/zod-openapi";
import type { AdminEnv } from "./admin-auth";

/**
 * One admin route: its definition (which validates the request and writes the OpenAPI
 * document) and its handler, typed by that definition. routes/index.ts lists them once:
 * the admin app serves that list and the OpenAPI document describes it.
 */
export function adminRoute<R extends RouteConfig>(route: R, handler: OpenAPIRoute<R, AdminEnv>["handler"]): OpenAPIRoute<R, AdminEnv> {
  return { route, handler };
}
