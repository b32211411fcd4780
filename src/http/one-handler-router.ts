import { METHOD_NAME_ALL, type Result, type Router } from "hono/router";

/**
 * A Hono router for an app whose only route is one handler for every method and path: the
 * product app (app.ts), whose pipeline routes each call by its product's own route table
 * (route/route-request.ts). Hono's routers would match every call against that one
 * wildcard route first; this answers it with no matching (it runs on every product call).
 */
export class OneHandlerRouter<T> implements Router<T> {
  readonly name = "OneHandlerRouter";
  #result: Result<T> | undefined;

  add(method: string, path: string, handler: T): void {
    // Anything else registered on the app would be silently shadowed: refuse it where it is written.
    if (this.#result || method !== METHOD_NAME_ALL || path !== "/*") {
      throw new Error(`OneHandlerRouter takes one app.all("*") handler, not ${method} ${path}`);
    }
    this.#result = [[[handler, {}]]];
  }

  match(): Result<T> {
    return this.#result ?? [[]];
  }
}

/**
 * The path Hono is given for an app on a OneHandlerRouter: none is read. Hono would otherwise
 * scan each request's URL for its path before asking the router (it runs on every product
 * call), so on such an app `c.req.path` is "/": its stages read the URL (http/request-url.ts).
 */
export const NO_PATH = () => "/";
