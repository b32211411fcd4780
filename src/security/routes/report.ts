import { createRoute, z } from "@hono/zod-openapi";
import type { Hono } from "hono";
import { clientAddress } from "../../http/client-address";
import { countFailure } from "../../identify/failed-auth";
import type { AppEnv } from "../../http/context";
import { validate } from "../../http/validate";
import { PUBLIC_REPORTS } from "../../limits/policies";
import { takeLeakReports } from "../leak-intake";
import { errorResponse } from "../../admin/schemas";

const Body = z
  .object({
    keys: z.array(z.string().min(1).max(1000)).min(1).max(100).openapi({ description: "The keys found, up to 100" }),
    url: z.string().url().max(2000).optional().openapi({ description: "Where they were found" }),
  })
  .strict();

export const route = createRoute({
  method: "post",
  path: "/keys/report",
  summary: "Report leaked zgate keys (anyone, no credentials): each one that still works is revoked at once",
  description:
    "For anyone who finds a zgate key in the open, like GitHub's credential revocation API. Up to 100 keys a call, 10 calls an hour per client address. Only checksum-valid zgate keys that exist and still work are revoked (audit actor `report:public`), each alone: never a key rotated or rolled from it, so whoever holds a dead key cannot revoke the one its customer moved to. A key that no longer works changes nothing and is not recorded; the answer is the same whether or not any key existed.",
  tags: ["security"],
  request: { body: { required: true, content: { "application/json": { schema: Body } } } },
  responses: {
    202: {
      description: "Received",
      content: { "application/json": { schema: z.object({ received: z.number() }).openapi("KeyReportReceived") } },
    },
    400: errorResponse("Not a list of 1 to 100 keys"),
    413: errorResponse("Body larger than MAX_BODY_BYTES"),
    429: errorResponse("Too many reports from this client address (Retry-After)"),
    503: errorResponse("A dependency unavailable"),
  },
});

export function registerReport(app: Hono<AppEnv>) {
  app.post(route.path, async (c) => {
    const address = clientAddress(c.req.raw.headers);
    // Counted before anything is read: the limit is on calls, whatever they hold.
    await countFailure(c.env, { guard: "report", address, policy: PUBLIC_REPORTS, message: "Too many reports, retry later" });
    let json: unknown;
    try {
      json = await c.req.json();
    } catch {
      json = undefined;
    }
    const body = validate(Body, json, "BAD_REQUEST");
    await takeLeakReports(
      c,
      body.keys.map((token) => ({
        token,
        reporter: "report:public",
        authenticated: false,
        sourceUrl: body.url ?? null,
        detail: { reporter_address: address ?? null },
      })),
    );
    return c.json({ received: body.keys.length }, 202);
  });
}
