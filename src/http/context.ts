import type { Settings } from "../config/settings";
import type { Env } from "../env";
import type { Identity } from "../identify/identity";
import type { JobStatus, UsageSnapshot, WindowReport } from "../limits/guard-protocol";
import type { GenerationLimits } from "../limits/types";
import type { ProductTarget } from "../products";
import type { RouteDef } from "../products/types";

/** Typed Hono context: what each pipeline stage leaves for the next. */
export type AppEnv = {
  Bindings: Env;
  Variables: {
    requestId: string;
    settings: Settings;
    target: ProductTarget;
    route: RouteDef;
    /** Path parameters of the matched route (`{id}` -> params.id), decoded. */
    params: Record<string, string>;
    identity: Identity;
    /** The request body, read once and bounded (null when there is none). */
    body: Uint8Array | null;
    /** The parsed body on JSON routes (undefined when empty). */
    json: unknown;
    /** The guard's decision for an admitted request. */
    admission: {
      windows: WindowReport[];
      /** ZSky generate calls: the reserved allowance and job slot, settled after the origin answers. */
      reservationId?: string;
      usage?: UsageSnapshot;
      generation?: GenerationLimits;
      /** A poll of the account's job: the job as the guard saw it at admission. */
      job?: JobStatus;
    };
    /**
     * A call that timed out for its caller while its admission waits for the origin's
     * answer (a ZSky generate's reservation): that answer, read whole, or null if none came
     * (proxy/forward.ts, LATE_ANSWER_MS).
     */
    lateAnswer: Promise<Response | null>;
    /** How the request ended, for the access log (forwarded, cache_hit, rejected, ...). */
    outcome: string;
    /** When the request reached the gateway (Date.now()), for the access log's latency. */
    startedAt: number;
  };
};

type Variables = AppEnv["Variables"];

/** The request as the pipeline's stages read it: what they use of Hono's HonoRequest. */
export interface StageRequest {
  readonly raw: Request;
  readonly method: string;
  header(name: string): string | undefined;
  query(): Record<string, string>;
  query(key: string): string | undefined;
}

/**
 * What the pipeline's stages use of a request's context. Hono's `Context<AppEnv>` is one
 * (the gateway app runs them under Hono); a product host's requests run on a
 * `ProductContext` (http/product-context.ts), which is only this.
 */
export interface StageContext {
  readonly req: StageRequest;
  readonly env: Env;
  readonly executionCtx: Pick<ExecutionContext, "waitUntil">;
  get<K extends keyof Variables>(key: K): Variables[K];
  set<K extends keyof Variables>(key: K, value: Variables[K]): void;
  get res(): Response;
  set res(response: Response | undefined);
}

/**
 * One stage of the pipeline (http/pipeline.ts): its work on the way in (`before`), which
 * may answer the request itself (a Response: no later stage runs), and its work once the
 * answer is made (`after`: the stages' in reverse order), which may edit it. An Error
 * either throws is answered by `onError` in the product's envelope. Either may be async.
 */
export interface Stage {
  before?: (c: StageContext) => Response | void | Promise<Response | void>;
  after?: (c: StageContext) => void | Promise<void>;
}

/** Answers an error a stage threw, in the request's product's envelope (http/on-error.ts). */
export type StageErrorHandler = (err: Error, c: StageContext) => Response | Promise<Response>;
