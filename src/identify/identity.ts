import type { ProductId } from "../products/types";

/** Who is calling, as established at the edge from a verified credential. */
export interface Identity {
  product: ProductId;
  accountId: string;
  userId?: string;
  keyId?: string;
  via: "jwt" | "key";
  /** Key identities: what the key may do, from its guard. */
  scopes?: string[];
  plan?: string | null;
  /** `zak_test_` keys: sent to the test origin, never to production. */
  testMode?: boolean;
  /** JWT sessions: the account tier the verified token names (ZAKGT_TIER_CLAIM), which picks its plan limits. */
  tier?: string;
  /** Access token id and issue/expiry times (JWT sessions), for revocation checks. */
  tokenId?: string;
  issuedAt?: number;
  expiresAt?: number;
}

/**
 * An identity with every field of `Identity`, in one order, whatever the credential: the
 * stages read the identities of all three products' callers (keys, sessions, enriched by
 * admission), and a property read that meets one object layout is V8's quickest, where
 * one that has met several (a key's identity, a session's, an admitted key's) looks each
 * layout up on every request.
 */
export function identityOf(fields: Identity): Identity {
  return {
    product: fields.product,
    accountId: fields.accountId,
    userId: fields.userId,
    keyId: fields.keyId,
    via: fields.via,
    scopes: fields.scopes,
    plan: fields.plan,
    testMode: fields.testMode,
    tier: fields.tier,
    tokenId: fields.tokenId,
    issuedAt: fields.issuedAt,
    expiresAt: fields.expiresAt,
  };
}

/** How an identity is named in the audit log. */
export function actorOf(identity: Identity): string {
  return identity.via === "key" ? `key:${identity.keyId}` : `user:${identity.userId}`;
}
