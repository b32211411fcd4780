import type { Context, ExecutionContext } from "hono";
import type { Env } from "../env";
import type { AppEnv } from "../http/context";
import type { ConsoleSession } from "./session";

/** The gateway's own fetch handler: the console's admin calls go through it, as any client's would. */
export type GatewayFetch = (request: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>;

/** An admin API answer other than 2xx, with its envelope's code and message. */
export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type ConsoleEnv = AppEnv & { Variables: { session: ConsoleSession | null; gatewayFetch: GatewayFetch } };

/**
 * Calls `/admin/v1<path>` in-process with the same env, under the signed-in identity:
 * the deployment's ADMIN_TOKEN for a token session (actor `admin:token`), the request's
 * own Access JWT behind Access (verified again by the admin API, actor `admin:<email>`),
 * or, to sign in, the token typed into the form. The client address and request id go
 * along, so failed-auth limits and the access log see the person, not the console.
 * The answer as it is (a download streams on); a 2xx JSON answer: `adminCall`.
 */
export async function adminFetch(
  c: Context<ConsoleEnv>,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  credential: { token?: string } = {},
): Promise<Response> {
  const session = c.get("session");
  const headers = new Headers({ "X-Request-Id": c.get("requestId") });
  if (credential.token === undefined && session?.kind === "access") headers.set("Cf-Access-Jwt-Assertion", session.jwt);
  else headers.set("Authorization", `Bearer ${credential.token ?? c.get("settings").ADMIN_TOKEN ?? ""}`);
  const address = c.req.header("cf-connecting-ip");
  if (address) headers.set("CF-Connecting-IP", address);
  if (body !== undefined) headers.set("Content-Type", "application/json");
  const request = new Request(new URL(`/admin/v1${path}`, c.req.url), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return c.get("gatewayFetch")(request, c.env, c.executionCtx);
}

/** An admin API answer other than 2xx as the error it is, with its envelope's code and message. */
export async function adminError(response: Response): Promise<AdminApiError> {
  const parsed = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  return new AdminApiError(
    response.status,
    parsed?.error?.code ?? "ERROR",
    parsed?.error?.message ?? `admin API answered ${response.status}`,
  );
}

/** `adminFetch` for a JSON answer: the parsed body, or the AdminApiError of a refusal. */
export async function adminCall<T>(
  c: Context<ConsoleEnv>,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  credential: { token?: string } = {},
): Promise<T> {
  const response = await adminFetch(c, method, path, body, credential);
  if (!response.ok) throw await adminError(response);
  return (await response.json().catch(() => null)) as T;
}

/** The query string of a GET, with empty fields left out. */
export function query(fields: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) if (value) params.set(name, value);
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The page's query fields by name, blanks left out (a search form sends every field). */
export function queryFields<N extends string>(c: Context<ConsoleEnv>, names: readonly N[]): Record<N, string | undefined> {
  return Object.fromEntries(names.map((name) => [name, c.req.query(name)?.trim() || undefined])) as Record<N, string | undefined>;
}

/** A listing whose filters the admin API may refuse: the refusal (400) comes back to show beside the form; anything else is thrown. */
export async function adminListing<T>(c: Context<ConsoleEnv>, path: string): Promise<{ result: T | null; problem: string | null }> {
  try {
    return { result: await adminCall<T>(c, "GET", path), problem: null };
  } catch (err) {
    if (!(err instanceof AdminApiError) || err.status !== 400) throw err;
    return { result: null, problem: err.message };
  }
}
