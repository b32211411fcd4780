import type { z } from "zod";
import type { ErrorCode } from "../http/errors";
import type { ProductLimits } from "../limits/types";

export type ProductId = "zakgt" | "zsky" | "zappway";
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/** What a route needs from the pipeline. Declared as data in each product module. */
export interface RouteDef {
  /** Stable name used in logs, limits and the OpenAPI document, e.g. `users.me.get`. */
  name: string;
  /** `ANY` routes a whole module prefix (ZappWay modules the reference does not list in full). */
  method: HttpMethod | "ANY";
  /** Origin path pattern: `{param}` matches one segment, a trailing `/*` any remainder. */
  path: string;
  /** `signed-url`: the URL's own signature is the credential (result downloads). */
  auth: "public" | "required" | "signed-url";
  /** Request bodies must be JSON (the product's `wrongMediaType` otherwise, 400 when they do not parse). */
  json?: boolean;
  /** Validated at the edge before any quota or origin is touched (the product's `invalidInput` status). */
  body?: z.ZodType;
  /** Cached at the edge, keyed by URL alone, when the origin marks an answer `public` (proxy/edge-cache.ts). */
  catalogue?: boolean;
  /** The presented access token is revoked at the gateway before forwarding (logout). */
  revokesSession?: boolean;
  /** On success at the origin, every key and session of the user is revoked (account deactivation). */
  deactivatesUser?: boolean;
  /** Answered by zgate itself (key management), never forwarded. See keys/gateway-routes.ts. */
  gateway?: boolean;
  /** The path parameter naming a ZSky job that must be the caller's (else 404), checked in the guard call. */
  jobParam?: string;
  /** The guard returns the account's allowance counters with its decision (ZSky usage). */
  readsAllowance?: boolean;
  /** Only a signed-in session may call it, never an API key (keys cannot mint keys). */
  sessionOnly?: boolean;
}

export interface Product {
  id: ProductId;
  /** Path prefix used on hosts that are not the product's own (local use, single-host). */
  pathPrefix: string;
  hostsSetting: "ZAKGT_HOSTS" | "ZSKY_HOSTS" | "ZAPPWAY_HOSTS";
  originSetting: "ORIGIN_ZAKGT" | "ORIGIN_ZSKY" | "ORIGIN_ZAPPWAY";
  /**
   * The prefixes of the keys zgate issues for it (key-format.ts derives the key format from
   * these): `live`, and `test` where the platform has a test mode (sent to its test origin).
   */
  keyPrefixes: { live: string; test?: string };
  /** Where the caller's credential is read from, as the platform documents it. */
  credential: "authorization-bearer" | "x-api-key";
  /** Whether bearer JWT access tokens (ZakGT sessions) are accepted. */
  acceptsJwt: boolean;
  /** The error for a body that fails validation: ZakGT answers 422, the others 400. */
  invalidInput: ErrorCode;
  /** The error for a body sent without a JSON content type: 415, or 400 where the reference has no 415 (ZSky). */
  wrongMediaType: "UNSUPPORTED_MEDIA_TYPE" | "BAD_REQUEST";
  /** 401 messages: one for no credential, one shared by every unusable credential. */
  unauthorized: { missing: string; invalid: string };
  /** Error body in the platform's own shape. */
  envelope(code: ErrorCode, message: string): unknown;
  routes: readonly RouteDef[];
  limits: ProductLimits;
}
