import { OpenAPIHono } from "@hono/zod-openapi";
import { GatewayError, gatewayEnvelope } from "../http/errors";
import { errorResponse } from "../http/on-error";
import { describeIssue } from "../http/validate";
import { adminAuth, type AdminEnv } from "./admin-auth";
import { ADMIN_ROUTES } from "./routes/index";

/** `/admin/v1`: key management for security and platform teams. Errors use the gateway envelope. */
export function createAdminApp() {
  const admin = new OpenAPIHono<AdminEnv>({
    defaultHook: (result, c) => {
      if (result.success) return;
      return c.json(gatewayEnvelope("BAD_REQUEST", describeIssue(result.error.issues[0]!)), 400);
    },
  });
  admin.use("*", adminAuth);
  admin.openapiRoutes(ADMIN_ROUTES);
  admin.all("*", () => {
    throw new GatewayError("NOT_FOUND", "Not Found");
  });
  admin.onError((err, c) => errorResponse(c, err, null));
  return admin;
}
