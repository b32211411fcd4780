import type { Env } from "../env";
import { GatewayError } from "../http/errors";
import { getKey, type KeyRecord } from "../keys/key-store";

/** The key an admin route names, or the admin API's 404. */
export async function requireKey(env: Env, keyId: string): Promise<KeyRecord> {
  const record = await getKey(env, keyId);
  if (!record) throw new GatewayError("NOT_FOUND", "Key not found");
  return record;
}
