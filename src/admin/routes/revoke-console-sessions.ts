import { createRoute, z } from "@hono/zod-openapi";
import { adminGuardFor } from "../../admit/guard-client";
import { TOKEN_CONSOLE_IDENTITY } from "../../limits/guard-protocol";
import { writeAudit } from "../../audit/audit-log";
import { adminRoute } from "../admin-route";
import { ADMIN_ERRORS, ADMIN_SECURITY, json } from "../schemas";

const route = createRoute({
  method: "post",
  path: "/console-sessions/revoke",
  summary: 'Sign every security console session out ("sign out everywhere")',
  description:
    "Ends every console session signed in with ADMIN_TOKEN, in every browser and every copy of its cookie: the next request of each is sent to sign in again. Sessions behind Cloudflare Access are Access's to end.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  responses: { 200: json(z.object({ sessions_revoked: z.number().int() }), "Signed out"), ...ADMIN_ERRORS },
});

export const revokeConsoleSessionsRoute = adminRoute(route, async (c) => {
  const revoked = await adminGuardFor(c.env).closeConsoleSessions(TOKEN_CONSOLE_IDENTITY);
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "console.sessions_revoke",
    requestId: c.get("requestId"),
    detail: { sessions_revoked: revoked },
  });
  return c.json({ sessions_revoked: revoked }, 200);
});
