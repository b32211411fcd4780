import type { z } from "zod";
import type { StageContext } from "../http/context";
import type { ErrorCode } from "../http/errors";
import type { GenerationKind, GenerationLimits, ProductLimits } from "../limits/types";

/** A registered product's id (`zakgt`, `zsky`, ...): src/products/index.ts lists them. */
export type ProductId = string;
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * What the OpenAPI document says of a route beyond its definition: the reference's
 * one-line summary, the request body where the reference or zgate defines one, and the
 * success response. Every route carries one, so no route goes undocumented.
 */
export interface OperationDoc {
  summary: string;
  request?: z.ZodType;
  success: { status: 200 | 201 | 204; schema?: z.ZodType; binary?: string };
  /** Statuses the route's own handling answers with beyond what its definition implies (zgate-answered routes). */
  errors?: readonly number[];
  /** A module prefix route: what the module's own path does (e.g. `GET /api/v1/agents` lists). */
  collection?: string;
  /** A module prefix route: the endpoints under it that the reference names, with their parameters. */
  endpoints?: { name: string; method: "get" | "post"; path: string; summary: string; request?: z.ZodType }[];
}

/** What a route needs from the pipeline. Declared as data in each product's folder. */
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
  /** Cached at the edge, keyed by URL alone, when the origin marks an answer `public` (forward/edge-cache.ts). */
  catalogue?: boolean;
  /** The presented access token is revoked at the gateway before forwarding (logout). */
  revokesSession?: boolean;
  /** On success at the origin, every key and session of the user is revoked (account deactivation). */
  deactivatesUser?: boolean;
  /** Answered by zgate itself with this handler (key management, results), never forwarded. */
  serve?: (c: StageContext) => Response | Promise<Response>;
  /**
   * What `serve` will ask a guard that depends on the request alone, started beside its
   * admission so the two round trips overlap (ZSky's download: whether its link was
   * refused): when admission asks a guard, or once an admission decided in the isolate
   * (a lease token) lets the request through. Never for a request the isolate refuses alone.
   */
  alongsideAdmission?: (c: StageContext) => void;
  /**
   * Runs once the answer is made (by the origin or by `serve`), before the caller sees it:
   * the product's own bookkeeping of the exchange (ZSky: a submission settles its
   * reservation, a poll frees its job's slot, a purge forgets the job).
   */
  settle?: (c: StageContext) => Promise<void>;
  /** A generate call: what it generates, counted against the product's generation allowances. */
  generates?: GenerationKind;
  /** The path parameter naming a ZSky job that must be the caller's (else 404), checked in the guard call. */
  jobParam?: string;
  /** The guard returns the account's allowance counters with its decision (ZSky usage). */
  readsAllowance?: boolean;
  /** Only a signed-in session may call it, never an API key (keys cannot mint keys). */
  sessionOnly?: boolean;
  doc: OperationDoc;
}

/** An OpenAPI security scheme, as the document's `components.securitySchemes` holds it. */
export type SecurityScheme =
  | { type: "http"; scheme: "bearer"; bearerFormat?: string; description: string }
  | { type: "apiKey"; in: "header"; name: string; description: string };

/** Settings of a product's own, beyond the hosts and origin every product has. */
export interface ProductSettings<S extends z.ZodRawShape = z.ZodRawShape> {
  /** Each setting's schema, by its name (the name a deployment sets). */
  fields: S;
  // The lists below name settings of `fields` (src/products/completeness.ts checks that they do).
  /** Settings that are secrets: put with `wrangler secret put`, never written in wrangler.toml. */
  secrets?: readonly string[];
  /** Settings holding a URL zgate sends requests to (`npm run check` refuses plain http:// in production). */
  urls?: readonly string[];
  /**
   * Optional features and their settings: a bad value turns the feature off (the log says
   * which setting) instead of taking every product down. `requires`: the setting without
   * which the feature cannot run at all (unset, it is off as if the setting were bad).
   */
  features?: Record<string, { settings: readonly string[]; requires?: string }>;
  /** What no one setting shows: settings that go together or exclude each other. */
  crossCheck?(settings: z.output<z.ZodObject<S>> & { ENVIRONMENT: string }, ctx: z.RefinementCtx): void;
}

/** What the pipeline calls for this product only, beyond its routes' own `serve` and `settle`. */
export interface ProductHooks {
  /**
   * A concurrency refusal is about to stand: true when something was freed since (ZSky:
   * jobs that ended unpolled), so admission is asked once more.
   */
  onConcurrencyRefusal?: (c: StageContext, generation: GenerationLimits) => Promise<boolean>;
}

/** A product's definition, as its folder declares it (`defineProduct` derives the rest). */
export interface ProductSpec<S extends z.ZodRawShape = z.ZodRawShape> {
  /** Lowercase letters: names its settings (`<ID>_HOSTS`, `ORIGIN_<ID>`), its tag and its operation ids. */
  id: ProductId;
  /** As people write it (`ZSky`). */
  name: string;
  /** What it serves, for the OpenAPI document's tag: "image and video jobs". */
  describes: string;
  /** Path prefix used on hosts that are not the product's own (local use, single-host). */
  pathPrefix: string;
  /** Its own hosts unless `<ID>_HOSTS` says otherwise. */
  defaultHosts: readonly string[];
  /**
   * The prefixes of the keys zgate issues for it (key-format.ts derives the key format from
   * these): `live`, and `test` where the platform has a test mode (sent to `ORIGIN_<ID>_TEST`).
   */
  keyPrefixes: { live: string; test?: string };
  /** Where the caller's credential is read from, as the platform documents it. */
  credential: "authorization-bearer" | "x-api-key";
  /** Whether bearer JWT access tokens (ZakGT sessions) are accepted. */
  acceptsJwt: boolean;
  /** An account of it is a user of it (a ZakGT user): a key issued to the account is owned by that user. */
  accountIsUser?: boolean;
  /** Its keys are handed signed result links (ZSky): revoking a key can refuse those links too. */
  resultLinks?: boolean;
  /** The error for a body that fails validation: ZakGT answers 422, the others 400. */
  invalidInput: ErrorCode;
  /** The error for a body sent without a JSON content type: 415, or 400 where the reference has no 415 (ZSky). */
  wrongMediaType: "UNSUPPORTED_MEDIA_TYPE" | "BAD_REQUEST";
  /** 401 messages: one for no credential, one shared by every unusable credential. */
  unauthorized: { missing: string; invalid: string };
  /** Error body in the platform's own shape. */
  envelope(code: ErrorCode, message: string): unknown;
  /** The same envelope as a schema (a named OpenAPI component): `envelope`'s answers must match it. */
  errorSchema: z.ZodType;
  /** The status codes its reference says its API answers with (documented on every forwarded route). */
  referenceStatuses: readonly number[];
  /** Its credentials as OpenAPI security schemes, by component name; a keyed route accepts any one of them. */
  securitySchemes: Readonly<Record<string, SecurityScheme>>;
  routes: readonly RouteDef[];
  limits: ProductLimits;
  settings?: ProductSettings<S>;
  hooks?: ProductHooks;
}

export interface Product<S extends z.ZodRawShape = z.ZodRawShape> extends ProductSpec<S> {
  /** `<ID>_HOSTS`: the hosts that are this product's own. */
  hostsSetting: string;
  /** `ORIGIN_<ID>`: where its requests go. */
  originSetting: string;
  /** `ORIGIN_<ID>_TEST`: where its test keys' requests go (products with test keys only). */
  testOriginSetting?: string;
  /** `<ID>_ASSERTION_KID`: the gateway key (of ORIGIN_ASSERTION_KEYS) that signs its origin assertions, whose `aud` is its id. */
  assertionKidSetting: string;
}
