import { createRoute, z } from "@hono/zod-openapi";
import { guardFor } from "../../admit/guard-client";
import { writeAudit } from "../../audit/audit-log";
import { guardExists } from "../../keys/guard-birth";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, NOT_FOUND } from "../schemas";

const route = createRoute({
  method: "post",
  path: "/keys/{id}/lift-suspension",
  summary: "Lift a ZSky key's safety suspension before its 24 hours are up",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam },
  responses: { 200: json(z.object({ id: z.string(), was_suspended: z.boolean() }), "Lifted"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export const liftSuspensionRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  // Suspensions live in the guard: an account without one has none (and asking would create it here, guard-birth.ts).
  const wasSuspended = (await guardExists(c.env, record)) && (await guardFor(c.env, record).liftSuspension(record.keyId));
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "key.lift_suspension",
    target: record.keyId,
    product: record.product,
    accountId: record.accountId,
    requestId: c.get("requestId"),
    detail: { was_suspended: wasSuspended },
  });
  return c.json({ id: record.keyId, was_suspended: wasSuspended }, 200);
});
