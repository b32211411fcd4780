import { productSettings, requireFeature } from "../config/settings";
import type { Stage, StageContext } from "../http/context";
import { GatewayError } from "../http/errors";
import { classifyKey, hashKey, keyModeOf } from "../keys/key-format";
import { findKeyByHash, isKnownUnknown, knownKeyRef, type KeyRef } from "../keys/key-store";
import { clientAddress } from "../http/client-address";
import { countFailure, isOverLimit, refuseIfOverLimit, type FailureSubject } from "./failed-auth";
import { failedKeyAuthPolicy } from "../limits/policies";
import { readCredential } from "./credentials";
import { verifyAccessToken } from "./jwt";
import { identityOf } from "./identity";

/**
 * Turns the request's credential into an Identity, or refuses it with 401 in the
 * product's envelope. Public and signed-URL routes skip this stage. An identity is only a claim until
 * the account guard admits it (edge/admit.ts). A key already known to this isolate costs
 * one continuation here, its hash's: this runs on every keyed request, and each async step
 * is runtime work (docs/benchmarks.md).
 */
export const identify: Stage = {
  before: (c) => (c.get("route").auth === "required" ? identifyCaller(c) : undefined),
};

function identifyCaller(c: StageContext): Promise<void> {
  const { product } = c.get("target");
  const credential = readCredential(c.req.raw.headers, product);
  switch (credential.kind) {
    case "none":
      throw new GatewayError("UNAUTHORIZED", product.unauthorized.missing);
    case "malformed":
      throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
    case "jwt":
      return identifySession(c, credential.token);
    case "key":
      return identifyKey(c, credential.secret);
  }
}

async function identifySession(c: StageContext, token: string): Promise<void> {
  const { product } = c.get("target");
  const claims = await verifyAccessToken(token, c.get("settings"), product.unauthorized.invalid);
  c.set(
    "identity",
    identityOf({
      product: product.id,
      accountId: claims.sub,
      userId: claims.sub,
      via: "jwt",
      tokenId: claims.jti,
      issuedAt: claims.iat,
      expiresAt: claims.exp,
      tier: claims.tier,
    }),
  );
}

async function identifyKey(c: StageContext, secret: string): Promise<void> {
  const { product } = c.get("target");
  const testMode = keyModeOf(secret) === "test";
  if (testMode) {
    // A mistyped test key is refused as any mistyped key is (below), before its mode is judged.
    if (classifyKey(secret) === "malformed") throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
    // A bad test origin (ORIGIN_ZAKGT_TEST) never sends test traffic to the live origin instead.
    requireFeature(c.get("settings"), "test-keys");
    if (!productSettings(c.get("settings"), product).testOrigin && c.get("settings").ENVIRONMENT !== "development") {
      throw new GatewayError("FORBIDDEN", "Test keys are not accepted by this deployment");
    }
  }
  const hash = await hashKey(secret);
  // A key this isolate found before needs no checksum: no key with a bad one is ever
  // issued or imported (key-format.ts importRefusal), so it cannot be among them. Such a key
  // of this product (a busy key's every request) takes no other step here.
  const known = knownKeyRef(hash);
  const ref = known?.product === product.id ? known : await checkedKey(c, secret, hash, known);
  c.set("identity", identityOf({ product: ref.product, accountId: ref.accountId, keyId: ref.keyId, via: "key", testMode }));
}

/**
 * A key of this product, looked up when the isolate does not know it; a key of another
 * product (known or found: not a credential of this one) and a key not found get the same
 * 401, counted as a failed authentication.
 */
async function checkedKey(c: StageContext, secret: string, hash: string, known: KeyRef | undefined): Promise<KeyRef> {
  const { product } = c.get("target");
  // Failed key authentications are limited per client address (edge/failed-auth.ts); a key
  // this isolate knows never needs the address, so it is read only when one is looked up
  // (and once, however many of the checks below ask for it).
  let subject: FailureSubject | undefined;
  const failures = () =>
    (subject ??= { guard: product.id, address: clientAddress(c.req.raw.headers), policy: failedKeyAuthPolicy(product, c.get("settings")) });
  const ref = known ?? (await lookUpKey(c, secret, hash, failures));
  if (ref && ref.product === product.id) return ref;
  await countFailure(c.env, failures());
  throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
}

/** A key this isolate does not know yet: its checksum, then storage (counted as a failed authentication when absent). */
async function lookUpKey(c: StageContext, secret: string, hash: string, failures: () => FailureSubject) {
  const { product } = c.get("target");
  const kind = classifyKey(secret);
  // A zgate-shaped key that fails its checksum cannot exist: refused with no storage read
  // and no guard call. Refusing it costs nothing, so it is not counted as a failure either.
  if (kind === "malformed") throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
  // Seen and found unknown in the last minute: refusing it again reads nothing, so there is
  // nothing to count either (a new guess costs a lookup, and is counted).
  if (isKnownUnknown(hash)) {
    refuseIfOverLimit(failures());
    throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
  }
  // A key that exists is never refused for its address's failures: they may be other
  // callers' behind the same address (an office, a CI runner). Only lookups that find
  // nothing are counted and limited; past the limit a guess costs one KV read (no D1
  // query, no guard call) before its 429.
  return findKeyByHash(c.env, hash, (p) => c.executionCtx.waitUntil(p), {
    rememberUnknown: kind === "valid",
    kvOnly: isOverLimit(failures()),
  });
}
