import { createRoute, z } from "@hono/zod-openapi";
import { GatewayError } from "../../http/errors";
import { hashKey } from "../../keys/key-format";
import { findKeyByHash, getKey } from "../../keys/key-store";
import { revokeLeakedKey } from "../../keys/leaked-keys";
import { keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { requireKey } from "../require-key";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, NOT_FOUND, RevokeContextSchema } from "../schemas";

const Body = RevokeContextSchema.extend({
  key: z.string().min(1).max(512),
  invalidate_result_links: z
    .boolean()
    .default(true)
    .openapi({ description: "ZSky: also refuse every result link issued so far for the jobs of each revoked key (default on)" }),
}).strict();

/** One key a leak report revoked, and why. */
export const LeakRevocationSchema = z
  .object({
    id: z.string(),
    why: z.enum(["leaked", "successor_of_leaked"]).openapi({
      description: "`leaked`: the reported key; `successor_of_leaked`: made from it by a ZSky rotation, which whoever held it could do",
    }),
    replaces: z.string().nullable(),
    already_revoked: z.boolean().openapi({ description: "Already refused before this report (e.g. rotated away): nothing changed" }),
    previously_revoked_by: z.string().nullable(),
    result_links_revoked: z.number().openapi({ description: "Stored results of this key's own jobs whose links were refused" }),
  })
  .openapi("LeakRevocation");

/** An admin-rolled successor revoke-leaked left working. */
const KeptSuccessorSchema = z
  .object({
    id: z.string(),
    replaces: z.string(),
    why: z.literal("rolled_by_admin"),
    status: z
      .enum(["active", "revoked", "expired"])
      .openapi({ description: "Its status now, which this revocation left as it was: `active` means it still works" }),
    result_links_revoked: z.number().openapi({
      description:
        "Stored results of its jobs whose links were refused all the same (the leaked key's jobs and polls went to it); a poll with it signs new ones",
    }),
  })
  .openapi("KeptSuccessor");

const route = createRoute({
  method: "post",
  path: "/keys/revoke-leaked",
  summary: "Revoke a key by its leaked plaintext (secret-scanning reports), with every key rotated or rolled from it",
  description:
    "The plaintext is hashed on arrival and never stored or logged. Keys rotated from the leaked one (by whoever held it) are revoked too; `revoked` lists each key and why. A key an admin rolled it to stays working (its plaintext was never with the leaked one) and is listed in `kept`; `already_rotated` says the customer had already moved to a successor.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: Body } } } },
  responses: {
    200: json(
      KeySchema.extend({
        revoked: z.array(LeakRevocationSchema),
        kept: z
          .array(KeptSuccessorSchema)
          .openapi({ description: "Successors an admin rolled to: never exposed with the leaked key, left working (they still answer)" }),
        already_rotated: z.boolean(),
        result_links_revoked: z
          .number()
          .openapi({ description: "Every link refused: the sum of `revoked[].result_links_revoked` and `kept[].result_links_revoked`" }),
      }).openapi("LeakedKeyRevoked"),
      "The leaked key (its fields) and every key revoked with it",
    ),
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const revokeLeakedRoute = adminRoute(route, async (c) => {
  const body = c.req.valid("json");
  const ref = await findKeyByHash(c.env, await hashKey(body.key), (p) => c.executionCtx.waitUntil(p));
  const record = ref && (await getKey(c.env, ref.keyId));
  if (!record) throw new GatewayError("NOT_FOUND", "Key not found");
  const by = { actor: c.get("actor"), requestId: c.get("requestId") };
  const outcome = await revokeLeakedKey(c.env, record, by, "key.revoke_leaked", {
    reason: body.reason,
    ticket: body.ticket,
    revokeResultLinks: body.invalidate_result_links,
  });
  return c.json({ ...keyView(await requireKey(c.env, record.keyId)), ...leakView(outcome) }, 200);
});

export function leakView(outcome: Awaited<ReturnType<typeof revokeLeakedKey>>) {
  return {
    revoked: outcome.revoked.map((r) => ({
      id: r.keyId,
      why: r.why,
      replaces: r.replaces,
      already_revoked: r.alreadyRevoked,
      previously_revoked_by: r.previouslyRevokedBy,
      result_links_revoked: r.resultLinksRevoked,
    })),
    kept: outcome.kept.map((k) => ({
      id: k.keyId,
      replaces: k.replaces,
      why: "rolled_by_admin" as const,
      status: k.status,
      result_links_revoked: k.resultLinksRevoked,
    })),
    already_rotated: outcome.alreadyRotated,
    result_links_revoked: outcome.resultLinksRevoked,
  };
}
