import { createRoute, z } from "@hono/zod-openapi";
import type { Env } from "../../env";
import { GatewayError } from "../../http/errors";
import { writeAudit } from "../../audit/audit-log";
import { hashKey } from "../../keys/key-format";
import { getKey, lookupKeyByHash, type KeyRecord } from "../../keys/key-store";
import { keyView } from "../../keys/views";
import { adminRoute } from "../admin-route";
import { ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, NOT_FOUND } from "../schemas";

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

const route = createRoute({
  method: "post",
  path: "/keys/lookup",
  summary: "Find a key by its plaintext or its SHA-256, without revoking it",
  description:
    "For investigating a reported key. A plaintext is hashed on arrival and never stored or logged; 64 hex characters are also tried as the SHA-256 itself (`matched_as` says which matched). Every lookup is audited (`key.lookup`, found or not), never with what was sent.",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z
            .object({ key: z.string().min(1).max(512).openapi({ description: "The plaintext key, or its SHA-256 (hex)" }) })
            .strict(),
        },
      },
    },
  },
  responses: {
    200: json(KeySchema.extend({ matched_as: z.enum(["plaintext", "sha256"]) }), "The key (its status unchanged)"),
    ...NOT_FOUND,
    ...ADMIN_ERRORS,
  },
});

export const lookupKeyRoute = adminRoute(route, async (c) => {
  const { key } = c.req.valid("json");
  const found = await findByPlaintextOrHash(c.env, key, (p) => c.executionCtx.waitUntil(p));
  // Who looked at which key, found or not: an investigation leaves a trail too. Never what was pasted.
  await writeAudit(c.env, {
    actor: c.get("actor"),
    action: "key.lookup",
    target: found?.record.keyId,
    product: found?.record.product,
    accountId: found?.record.accountId,
    requestId: c.get("requestId"),
    detail: found ? { matched_as: found.matchedAs } : { found: false },
  });
  if (!found) throw new GatewayError("NOT_FOUND", "Key not found");
  return c.json({ ...keyView(found.record), matched_as: found.matchedAs }, 200);
});

async function findByPlaintextOrHash(
  env: Env,
  key: string,
  waitUntil: (p: Promise<unknown>) => void,
): Promise<{ record: KeyRecord; matchedAs: "plaintext" | "sha256" } | null> {
  const candidates: [string, "plaintext" | "sha256"][] = [[await hashKey(key), "plaintext"]];
  if (SHA256_HEX.test(key)) candidates.unshift([key.toLowerCase(), "sha256"]);
  for (const [hash, matchedAs] of candidates) {
    const ref = await lookupKeyByHash(env, hash, waitUntil);
    const record = ref && (await getKey(env, ref.keyId));
    if (record) return { record, matchedAs };
  }
  return null;
}
