import { createRoute, z } from "@hono/zod-openapi";
import { GatewayError } from "../../http/errors";
import { guardFor } from "../../admit/guard-client";
import { settingBeforeGuard } from "../../keys/guard-birth";
import { planNames } from "../../limits/policies";
import { productById } from "../../products/index";
import type { Product } from "../../products/types";
import { writeAudit } from "../../audit/audit-log";
import { limitOverrideFromApi, limitOverrideSchema } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { accountIdParam, ADMIN_ERRORS, ADMIN_SECURITY, json, ProductSchema } from "../schemas";

const AccountLimits = z.object({ windows: limitOverrideSchema.shape.windows }).strict();

const Body = z
  .object({
    plan: z
      .string()
      .min(1)
      .max(50)
      .nullable()
      .openapi({ description: "A plan of the product; null: each key's own plan (or a ZakGT session's tier claim)" }),
    limit_override: AccountLimits.nullable().optional().openapi({
      description:
        "The account's own window limits by policy name, e.g. a ZappWay Enterprise rate; above the plan's, below a key's own override",
    }),
  })
  .strict();

const route = createRoute({
  method: "put",
  path: "/accounts/{product}/{account}/plan",
  summary: "Set an account's plan and its own limits (a ZappWay organization, a ZakGT user)",
  description:
    "The plan of every call of the account: all keys of a ZappWay organization share its plan's window; a ZakGT user's sessions and keys take its limits over a session's tier claim. Replaces what was set (`plan: null` without `limit_override` removes it). Applies to every request after it returns.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    params: z.object({
      product: ProductSchema.openapi({ param: { name: "product", in: "path" } }),
      account: accountIdParam("account"),
    }),
    body: { required: true, content: { "application/json": { schema: Body } } },
  },
  responses: {
    200: json(
      z
        .object({ product: ProductSchema, account: z.string(), plan: z.string().nullable(), limit_override: AccountLimits.nullable() })
        .openapi("AccountPlan"),
      "Saved",
    ),
    ...ADMIN_ERRORS,
  },
});

/** A plan or window the product does not have would silently change nothing: refused instead. */
function checkNames(product: Product, body: z.infer<typeof Body>, plans: string[]): void {
  if (body.plan !== null && !plans.includes(body.plan)) {
    throw new GatewayError("BAD_REQUEST", `plan: ${product.id} has no plan '${body.plan}' (plans: ${plans.join(", ") || "none"})`);
  }
  const windows = new Set(product.limits.windows.filter((w) => w.subject !== "ip").map((w) => w.name));
  const unknown = Object.keys(body.limit_override?.windows ?? {}).find((name) => !windows.has(name));
  if (unknown !== undefined) throw new GatewayError("BAD_REQUEST", `limit_override.windows: ${product.id} has no window '${unknown}'`);
}

export const setAccountPlanRoute = adminRoute(route, async (c) => {
  const { product: productId, account } = c.req.valid("param");
  const body = c.req.valid("json");
  const product = productById(productId);
  // The schema took only a registered product's id: this holds unless one left the registry since.
  if (!product) throw new GatewayError("BAD_REQUEST", `product: no product '${productId}'`);
  checkNames(product, body, planNames(product, c.get("settings")));
  const windows = body.limit_override?.windows ? limitOverrideFromApi({ windows: body.limit_override.windows }).windows! : null;
  // Before the account's guard exists, kept in D1 for its birth (keys/guard-birth.ts: an
  // admin call must not place the guard). Else the guard waits for the account's
  // outstanding leases: the next request is counted under the new plan.
  const owner = { product: productId, accountId: account };
  const plan = { plan: body.plan, windows };
  if (!(await settingBeforeGuard(c.env, owner, { setting: "plan", value: plan }))) await guardFor(c.env, owner).setAccountPlan(plan);
  const saved = { plan: body.plan, limit_override: body.limit_override ?? null };
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "account.set_plan",
    target: account,
    product: productId,
    accountId: account,
    requestId: c.get("requestId"),
    detail: saved,
  });
  return c.json({ product: productId, account, ...saved }, 200);
});
