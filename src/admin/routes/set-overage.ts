import { createRoute, z } from "@hono/zod-openapi";
import { guardFor } from "../../admit/guard-client";
import { settingBeforeGuard } from "../../keys/guard-birth";
import * as clock from "../../util/clock";
import { writeAudit } from "../../audit/audit-log";
import { adminRoute } from "../admin-route";
import { accountIdParam, ADMIN_ERRORS, ADMIN_SECURITY, json } from "../schemas";

const Overage = z
  .object({ enabled: z.boolean(), monthly_cap_cents: z.number().int().min(0).max(100_000_000) })
  .strict()
  .openapi("ZskyOverage");

const route = createRoute({
  method: "put",
  path: "/accounts/zsky/{account}/overage",
  summary: "Opt a ZSky account in or out of overage, with its monthly budget cap",
  description:
    "Beyond the monthly base allowance, generations are a hard stop (429) unless overage is enabled; then they are priced ($0.50 per video, $0.05 per image) up to the budget. Unused budget rolls over to the next month.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    params: z.object({
      account: accountIdParam("account"),
    }),
    body: { required: true, content: { "application/json": { schema: Overage } } },
  },
  responses: {
    200: json(z.object({ account: z.string(), enabled: z.boolean(), monthly_cap_cents: z.number() }).openapi("ZskyOverageSaved"), "Saved"),
    ...ADMIN_ERRORS,
  },
});

export const setOverageRoute = adminRoute(route, async (c) => {
  const account = c.req.valid("param").account;
  const body = c.req.valid("json");
  const owner = { product: "zsky", accountId: account } as const;
  const overage = { enabled: body.enabled, monthlyCapCents: body.monthly_cap_cents };
  // Before the account's guard exists, kept in D1 for its birth (keys/guard-birth.ts: an admin call must not place the guard).
  const kept = await settingBeforeGuard(c.env, owner, { setting: "overage", value: { ...overage, at: clock.now() } });
  if (!kept) await guardFor(c.env, owner).setOverage(overage);
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "account.set_overage",
    target: account,
    product: "zsky",
    accountId: account,
    requestId: c.get("requestId"),
    detail: body,
  });
  return c.json({ account, ...body }, 200);
});
