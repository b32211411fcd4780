import type { Child } from "hono/jsx";
import type { ConsoleSession } from "./session";
import { relativeAge, utc } from "./format";

/** Every console page: the navigation, who is signed in, the sign-out forms (with their CSRF token). */
export function Layout(props: { title: string; session: ConsoleSession | null; csrf?: string; children: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · zgate security console`}</title>
        <link rel="stylesheet" href="/admin/console.css" />
      </head>
      <body>
        <header>
          <strong>zgate security console</strong>
          {props.session?.signedIn && (
            <nav class="actions">
              <a href="/admin/">Key search</a>
              <a href="/admin/keys/new">Create key</a>
              <a href="/admin/calls">Calls</a>
              <a href="/admin/audit">Audit log</a>
              <a href="/admin/leaks">Leak intake</a>
            </nav>
          )}
          {props.session?.signedIn && (
            <span class="who">{props.session.kind === "access" ? "signed in by Cloudflare Access" : "admin:token"}</span>
          )}
          {props.session?.kind === "token" && props.session.signedIn && props.csrf && (
            <>
              <form method="post" action="/admin/sign-out">
                <input type="hidden" name="csrf" value={props.csrf} />
                <button class="secondary" type="submit">
                  Sign out
                </button>
              </form>
              <form method="post" action="/admin/sign-out-everywhere">
                <input type="hidden" name="csrf" value={props.csrf} />
                <button class="secondary" type="submit" title="Ends every console session signed in with the admin token, in every browser">
                  Sign out everywhere
                </button>
              </form>
            </>
          )}
        </header>
        <main>{props.children}</main>
      </body>
    </html>
  );
}

/** A time as UTC with its age beside it; a dash for none. */
export function Time(props: { iso: string | null | undefined }) {
  if (!props.iso) return <span class="muted">—</span>;
  return (
    <time datetime={props.iso}>
      {utc(props.iso)} <span class="muted">({relativeAge(props.iso)})</span>
    </time>
  );
}

export function Status(props: { status: string }) {
  return <span class={`status status-${props.status}`}>{props.status}</span>;
}

/** A form field carrying the session's CSRF token: every POST form has one. */
export function Csrf(props: { token: string }) {
  return <input type="hidden" name="csrf" value={props.token} />;
}

/** "Next page" from an API cursor, keeping the page's other query fields. */
export function NextPage(props: { path: string; fields: Record<string, string | undefined>; cursor: string | null }) {
  if (!props.cursor) return <p class="pager muted">End of list.</p>;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(props.fields)) if (value && name !== "cursor") params.set(name, value);
  params.set("cursor", props.cursor);
  return (
    <p class="pager">
      <a class="button secondary" href={`${props.path}?${params}`}>
        Next page →
      </a>
    </p>
  );
}

export function Notice(props: { kind?: "notice" | "warn" | "error"; children: Child }) {
  return <div class={`panel ${props.kind ?? "notice"}`}>{props.children}</div>;
}

/** A table with its header row; `numeric` columns are right-aligned. */
export function Table(props: { head: string[]; numeric?: string[]; children: Child }) {
  return (
    <table>
      <thead>
        <tr>
          {props.head.map((name) => (
            <th class={props.numeric?.includes(name) ? "num" : undefined}>{name}</th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
