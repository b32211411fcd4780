import { createRoute, z } from "@hono/zod-openapi";
import { guardFor } from "../../admit/guard-client";
import { writeAudit } from "../../audit/audit-log";
import { updateKeyLimits } from "../../keys/key-store";
import { setLimitsBeforeGuard } from "../../keys/guard-birth";
import { keyView, limitOverrideFromApi, limitOverrideSchema } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeyIdParam, KeySchema, NOT_FOUND } from "../schemas";

const Body = z
  .object({
    plan: z.string().min(1).max(50).nullable().optional(),
    limit_override: limitOverrideSchema.nullable().optional(),
  })
  .strict();

const route = createRoute({
  method: "patch",
  path: "/keys/{id}",
  summary: "Change a key's plan or its own limits (e.g. a ZappWay Enterprise rate, a lifted ZSky daily cap)",
  description: "Takes effect on the key's next request. `null` clears a field.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { params: KeyIdParam, body: { required: true, content: { "application/json": { schema: Body } } } },
  responses: { 200: json(KeySchema, "The updated key"), ...NOT_FOUND, ...ADMIN_ERRORS },
});

export const updateKeyLimitsRoute = adminRoute(route, async (c) => {
  const record = await requireKey(c.env, c.req.valid("param").id);
  const body = c.req.valid("json");
  const plan = body.plan === undefined ? record.plan : body.plan;
  const override =
    body.limit_override === undefined ? record.limitOverride : body.limit_override && limitOverrideFromApi(body.limit_override);
  // The guard first: it is what enforces; D1 records. Before the guard exists D1 alone (it reads them at its birth).
  if (!(await setLimitsBeforeGuard(c.env, record, plan, override))) {
    await guardFor(c.env, record).setKeyLimits(record.keyId, plan, override);
    await updateKeyLimits(c.env, record.keyId, plan, override);
  }
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "key.update_limits",
    target: record.keyId,
    product: record.product,
    accountId: record.accountId,
    requestId: c.get("requestId"),
    detail: { plan, limit_override: body.limit_override ?? null },
  });
  return c.json(keyView(await requireKey(c.env, record.keyId)), 200);
});
