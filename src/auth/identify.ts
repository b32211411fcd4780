import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { readCredential } from "./credentials";
import { verifyAccessToken } from "./jwt";

/**
 * Turns the request's credential into an Identity, or refuses it with 401 in the
 * product's envelope. Public routes skip this stage entirely.
 */
export const identify: MiddlewareHandler<AppEnv> = async (c, next) => {
  const { product } = c.var.target;
  if (c.var.route.auth === "public") return next();

  const credential = readCredential(c.req.raw.headers, product);
  switch (credential.kind) {
    case "none":
      throw new GatewayError("UNAUTHORIZED", product.unauthorized.missing);
    case "jwt": {
      const claims = await verifyAccessToken(credential.token, c.var.settings, product.unauthorized.invalid);
      c.set("identity", {
        product: product.id,
        accountId: claims.sub,
        userId: claims.sub,
        via: "jwt",
        tokenId: claims.jti,
        issuedAt: claims.iat,
        expiresAt: claims.exp,
      });
      break;
    }
    default:
      // API keys are verified by the key store; until it exists no key is known.
      throw new GatewayError("UNAUTHORIZED", product.unauthorized.invalid);
  }
  await next();
};
