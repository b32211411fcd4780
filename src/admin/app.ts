import { OpenAPIHono } from "@hono/zod-openapi";
import { GatewayError, gatewayEnvelope } from "../http/errors";
import { errorResponse } from "../http/on-error";
import { describeIssue } from "../http/validate";
import { adminAuth, type AdminEnv } from "./admin-auth";
import { registerCreateKey } from "./routes/create-key";
import { registerExportUsage } from "./routes/export-usage";
import { registerGetKey } from "./routes/get-key";
import { registerKeyUsage } from "./routes/key-usage";
import { registerLiftSuspension } from "./routes/lift-suspension";
import { registerListAudit } from "./routes/list-audit";
import { registerListKeys } from "./routes/list-keys";
import { registerLookupKey } from "./routes/lookup-key";
import { registerRevokeKey } from "./routes/revoke-key";
import { registerRevokeLeaked } from "./routes/revoke-leaked";
import { registerRevokeConsoleSessions } from "./routes/revoke-console-sessions";
import { registerReplaceKey } from "./routes/replace-key";
import { registerRevokeSessions } from "./routes/revoke-sessions";
import { registerRollKey } from "./routes/roll-key";
import { registerSearchCalls } from "./routes/search-calls";
import { registerSetAccountPlan } from "./routes/set-account-plan";
import { registerSetOverage } from "./routes/set-overage";
import { registerUpdateKeyLimits } from "./routes/update-key-limits";

/** `/admin/v1`: key management for security and platform teams. Errors use the gateway envelope. */
export function createAdminApp() {
  const admin = new OpenAPIHono<AdminEnv>({
    defaultHook: (result, c) => {
      if (result.success) return;
      return c.json(gatewayEnvelope("BAD_REQUEST", describeIssue(result.error.issues[0]!)), 400);
    },
  });
  admin.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" });
  admin.openAPIRegistry.registerComponent("securitySchemes", "CloudflareAccess", {
    type: "apiKey",
    in: "header",
    name: "Cf-Access-Jwt-Assertion",
    description: "Cloudflare Access JWT (when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set)",
  });
  admin.use("*", adminAuth);
  registerCreateKey(admin);
  registerListKeys(admin);
  registerRevokeLeaked(admin);
  registerLookupKey(admin);
  registerGetKey(admin);
  registerKeyUsage(admin);
  registerExportUsage(admin);
  registerSearchCalls(admin);
  registerRevokeKey(admin);
  registerRollKey(admin);
  registerReplaceKey(admin);
  registerUpdateKeyLimits(admin);
  registerLiftSuspension(admin);
  registerSetOverage(admin);
  registerSetAccountPlan(admin);
  registerRevokeSessions(admin);
  registerRevokeConsoleSessions(admin);
  registerListAudit(admin);
  admin.all("*", () => {
    throw new GatewayError("NOT_FOUND", "Not Found");
  });
  admin.onError((err, c) => errorResponse(c, err, null));
  return admin;
}
