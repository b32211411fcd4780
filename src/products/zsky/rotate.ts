import type { StageContext } from "../../http/context";
import { GatewayError } from "../../http/errors";
import { rotateKey } from "../../keys/key-lifecycle";
import { getKey } from "../../keys/key-store";
import { iso } from "../../keys/views";

/**
 * ZSky `POST /v1/keys/rotate`: a new key with the same account, label, scopes, plan,
 * limits and expiry, shown once; the presented key is refused from the moment this
 * returns, and its counters (windows, daily caps, jobs, safety record) carry over.
 */
export async function rotateZskyKey(c: StageContext) {
  const identity = c.get("identity");
  const current = await getKey(c.env, identity.keyId!);
  if (!current) throw new GatewayError("UNAUTHORIZED", c.get("target").product.unauthorized.invalid);
  const rotated = await rotateKey(c.env, current, { actor: `key:${current.keyId}`, requestId: c.get("requestId") });
  // A concurrent rotation (or revocation) got there first: this key is no longer valid.
  if (!rotated) throw new GatewayError("UNAUTHORIZED", c.get("target").product.unauthorized.invalid);
  const { record, secret } = rotated;
  return Response.json({
    key: secret,
    key_id: record.keyId,
    last4: record.last4,
    created_at: iso(record.createdAt),
    replaces_key_id: current.keyId,
  });
}
