import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { asGatewayError } from "../http/on-error";
import { AdminApiError, type ConsoleEnv } from "./admin-client";
import { Layout, Notice } from "./layout";
import { csrfToken } from "./session";

/** A console page: the layout around `body`, which gets the session's CSRF token for its forms. */
export async function render(c: Context<ConsoleEnv>, title: string, body: (csrf: string) => Child, status: ContentfulStatusCode = 200) {
  const session = c.get("session");
  const csrf = session ? await csrfToken(session) : "";
  return c.html(
    <Layout title={title} session={session} csrf={csrf}>
      {body(csrf)}
    </Layout>,
    status,
  );
}

/** Any failure as a page with the same status: the admin API's own message, or the gateway's (never a stack trace). */
export function renderError(c: Context<ConsoleEnv>, err: Error) {
  const { status, message } = err instanceof AdminApiError ? err : asGatewayError(err, c.get("requestId"));
  const shown = (status >= 400 && status <= 599 ? status : 500) as ContentfulStatusCode;
  return render(
    c,
    `Error ${shown}`,
    () => (
      <>
        <h1>{`Error ${shown}`}</h1>
        <Notice kind="error">
          <p>{message}</p>
          <p class="muted">{`Request id ${c.get("requestId") ?? "unknown"}`}</p>
        </Notice>
        <p>
          <a href="/admin/">Back to key search</a>
        </p>
      </>
    ),
    shown,
  );
}
