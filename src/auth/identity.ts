import type { ProductId } from "../products/types";

/** Who is calling, as established at the edge from a verified credential. */
export interface Identity {
  product: ProductId;
  accountId: string;
  userId?: string;
  keyId?: string;
  via: "jwt" | "key";
  /** Access token id and issue/expiry times (JWT sessions), for revocation checks. */
  tokenId?: string;
  issuedAt?: number;
  expiresAt?: number;
}
