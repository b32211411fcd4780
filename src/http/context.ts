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
  };
};
