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

/** How an identity is named in the audit log. */
export function actorOf(identity: Identity): string {
  return identity.via === "key" ? `key:${identity.keyId}` : `user:${identity.userId}`;
}
