import { z } from "zod";
import type { StageContext } from "../../http/context";
import { GatewayError } from "../../http/errors";
import { validate } from "../../http/validate";
import { issueKey, revokeKey } from "../../keys/key-lifecycle";
import { getKey, listKeys, type KeyRecord } from "../../keys/key-store";
import { listUsage, usagePosition } from "../../usage/usage-history";
import { decodeCursor, iso, keyCursor, keyView, limitParam, page, scopesSchema } from "../../keys/views";

/**
 * ZakGT personal access keys (`/api/v1/developer/api-keys`), answered by zgate for the
 * signed-in user: a `zak_live_` key acts as its owner. Responses use ZakGT's success
 * envelope `{status, data, request_id}`; errors its `{"detail"}`.
 */
export const createBody = z
  .object({
    label: z.string().trim().min(1).max(100).optional(),
    scopes: scopesSchema.optional(),
    expires_at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

const listQuery = z.object({ limit: limitParam, cursor: z.string().optional() });

function ok(c: StageContext, data: unknown, status: 200 | 201 = 200) {
  return Response.json({ status: "ok", data, request_id: c.get("requestId") }, { status });
}

/** The listing shape: no product/account (they are the caller's), never the secret. */
function ownKeyView(record: KeyRecord) {
  const {
    product: _p,
    account: _a,
    owner_user_id: _o,
    imported: _i,
    revoked_by: _r,
    revoke_reason: _rr,
    revoke_ticket: _rt,
    replaces: _rp,
    ...view
  } = keyView(record);
  return view;
}

/** The caller's own key, or 404 for anything else (another user's key looks like no key). */
async function ownKey(c: StageContext): Promise<KeyRecord> {
  const record = await getKey(c.env, c.get("params").id ?? "");
  if (!record || record.product !== "zakgt" || record.ownerUserId !== c.get("identity").userId) {
    throw new GatewayError("NOT_FOUND", "API key not found");
  }
  return record;
}

export async function createDeveloperKey(c: StageContext) {
  const body = validate(createBody, c.get("json") ?? {});
  const expiresAt = body.expires_at ? Date.parse(body.expires_at) : null;
  if (expiresAt !== null && expiresAt <= Date.now()) throw new GatewayError("UNPROCESSABLE", "expires_at: must be in the future");
  const userId = c.get("identity").userId!;
  const { record, secret } = await issueKey(
    c.env,
    { product: "zakgt", accountId: userId, ownerUserId: userId, label: body.label, scopes: body.scopes, expiresAt },
    { actor: `user:${userId}`, requestId: c.get("requestId") },
  );
  // The only time the secret is ever shown.
  return ok(c, { ...ownKeyView(record), key: secret }, 201);
}

export async function listDeveloperKeys(c: StageContext) {
  const query = validate(listQuery, c.req.query());
  const after = decodeCursor(query.cursor, keyCursor);
  const rows = await listKeys(c.env, {
    product: "zakgt",
    ownerUserId: c.get("identity").userId!,
    limit: query.limit,
    after: after && { createdAt: after.c, keyId: after.k },
  });
  const { items, next_cursor } = page(rows, query.limit, (r) => ({ c: r.createdAt, k: r.keyId }));
  return ok(c, { keys: items.map(ownKeyView), next_cursor });
}

export async function revokeDeveloperKey(c: StageContext) {
  const record = await ownKey(c);
  await revokeKey(c.env, record, { actor: `user:${c.get("identity").userId}`, requestId: c.get("requestId") });
  return ok(c, { id: record.keyId, status: "revoked" });
}

export async function developerKeyUsage(c: StageContext) {
  const record = await ownKey(c);
  const query = validate(listQuery, c.req.query());
  const after = decodeCursor(query.cursor, usagePosition);
  const rows = await listUsage(c.env, record, { limit: query.limit, after });
  const { items, next_cursor } = page(rows, query.limit, (r) => r.position);
  return ok(c, {
    key_id: record.keyId,
    items: items.map((u) => ({ time: iso(u.at), method: u.method, path: u.path, status: u.status, request_id: u.requestId })),
    next_cursor,
  });
}
