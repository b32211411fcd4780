import { getQueryParam } from "hono/utils/url";
import type { Env } from "../env";
import type { AppEnv, StageContext, StageRequest } from "./context";

type Variables = AppEnv["Variables"];

/** A product host's request as its stages read it (Hono's HonoRequest does the same for the gateway app). */
class ProductRequest implements StageRequest {
  // Read once: each read of a Request's field is a call into the runtime, and the stages
  // read the method some six times a request (the request's fields never change).
  readonly method: string;
  readonly #headers: Headers;

  constructor(readonly raw: Request) {
    this.method = raw.method;
    this.#headers = raw.headers;
  }

  header(name: string): string | undefined {
    return this.#headers.get(name) ?? undefined;
  }

  query(): Record<string, string>;
  query(key: string): string | undefined;
  query(key?: string): Record<string, string> | string | undefined {
    // Hono's own parser: a query reads the same on a product host as on the gateway app.
    return getQueryParam(this.raw.url, key);
  }
}

/**
 * The context of a product host's request: only what the pipeline's stages use
 * (StageContext), in place of Hono's Context. A product host has one handler (the
 * pipeline), so Hono's router, its dispatch and its per-request context (some fifteen
 * closures, a Map of variables) did nothing for it; and a request holds its context for as
 * long as the origin takes to answer: at 50 requests in flight the garbage collector copies
 * every one of them at each young-generation collection (docs/benchmarks.md, "What a
 * request in flight holds").
 */
export class ProductContext implements StageContext {
  readonly req: ProductRequest;
  #res: Response | undefined = undefined;
  // Every variable from the start, in one order: one object shape for every request.
  readonly #vars: { [K in keyof Variables]: Variables[K] | undefined } = {
    requestId: undefined,
    settings: undefined,
    target: undefined,
    route: undefined,
    params: undefined,
    identity: undefined,
    body: undefined,
    json: undefined,
    admission: undefined,
    lateAnswer: undefined,
    outcome: undefined,
    startedAt: undefined,
  };

  constructor(
    request: Request,
    readonly env: Env,
    readonly executionCtx: ExecutionContext,
  ) {
    this.req = new ProductRequest(request);
  }

  get<K extends keyof Variables>(key: K): Variables[K] {
    return this.#vars[key] as Variables[K];
  }

  set<K extends keyof Variables>(key: K, value: Variables[K]): void {
    this.#vars[key] = value;
  }

  /** As Hono's `c.res`: an empty 200 until a stage answers. */
  get res(): Response {
    return (this.#res ??= new Response(null));
  }

  /**
   * As Hono's `c.res =`, so a stage behaves alike on both apps: a response set over another
   * takes on the other's fields (but its Content-Type); `undefined` first replaces it
   * outright (http/response.ts replaceResponse).
   */
  set res(response: Response | undefined) {
    if (this.#res && response) {
      const old = this.#res.headers;
      response = new Response(response.body, response);
      for (const [name, value] of old) {
        if (name === "content-type") continue;
        if (name === "set-cookie") {
          response.headers.delete(name);
          for (const cookie of old.getAll(name)) response.headers.append(name, cookie);
        } else response.headers.set(name, value);
      }
    }
    this.#res = response;
  }
}
