import type { Context } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { issueKey, revokeKey } from "./key-lifecycle";
import { getKey } from "./key-store";
import { iso } from "./views";

/**
 * ZSky `POST /v1/keys/rotate`: a new key with the same account, label, scopes, plan and
 * expiry, shown once; the presented key is refused from the moment this returns.
 */
export async function rotateZskyKey(c: Context<AppEnv>) {
  const identity = c.var.identity;
  const current = await getKey(c.env, identity.keyId!);
  if (!current) throw new GatewayError("UNAUTHORIZED", c.var.target.product.unauthorized.invalid);
  const by = { actor: `key:${current.keyId}`, requestId: c.var.requestId };
  const { record, secret } = await issueKey(
    c.env,
    {
      product: "zsky",
      accountId: current.accountId,
      label: current.label,
      scopes: current.scopes,
      plan: current.plan,
      expiresAt: current.expiresAt,
    },
    by,
  );
  await revokeKey(c.env, current, by, "key.rotate");
  return c.json({
    key: secret,
    key_id: record.keyId,
    last4: record.last4,
    created_at: iso(record.createdAt),
    replaces_key_id: current.keyId,
  });
}
