import type { Context, Hono } from "hono";
import { AdminApiError, adminCall, type ConsoleEnv } from "../admin-client";
import { Csrf, Notice } from "../layout";
import { render } from "../render";
import { endSession, startSession } from "../session";

function SignInForm(props: { csrf: string; problem?: string }) {
  return (
    <>
      <h1>Sign in</h1>
      {props.problem && <Notice kind="error">{props.problem}</Notice>}
      <form method="post" action="/admin/sign-in" class="panel">
        <Csrf token={props.csrf} />
        <label>
          Admin token (ADMIN_TOKEN)
          <input type="password" name="token" autocomplete="off" required size={48} />
        </label>
        <p>
          <button type="submit">Sign in</button>
        </p>
        <p class="muted">
          The token is checked by the admin API and never stored: the browser keeps only a signed session cookie for 8 hours, which signing
          out ends on the server too.
        </p>
      </form>
    </>
  );
}

/**
 * Sign-in with ADMIN_TOKEN, checked by the admin API itself (so a wrong token counts as
 * a failed admin login for the client address, with its 429), sign-out, and sign-out
 * everywhere (every token session, through the admin API so it is audited). Behind
 * Cloudflare Access there is nothing to sign in to: Access already did.
 */
export function registerSignIn(app: Hono<ConsoleEnv>) {
  const noToken = (c: Context<ConsoleEnv>) =>
    render(
      c,
      "Sign in",
      () => <Notice kind="warn">This deployment has no ADMIN_TOKEN: open the console through Cloudflare Access.</Notice>,
      503,
    );

  app.get("/sign-in", async (c) => {
    const session = c.get("session");
    if (session?.signedIn) return c.redirect("/admin/", 303);
    if (!c.get("settings").ADMIN_TOKEN) return noToken(c);
    c.set("session", session ?? (await startSession(c, false)));
    return render(c, "Sign in", (csrf) => <SignInForm csrf={csrf} />);
  });

  app.post("/sign-in", async (c) => {
    if (!c.get("settings").ADMIN_TOKEN) return noToken(c);
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token.trim() : "";
    try {
      await adminCall(c, "GET", "/audit?limit=1", undefined, { token });
    } catch (err) {
      if (!(err instanceof AdminApiError) || err.status >= 500) throw err;
      const problem = err.status === 401 ? "That is not the admin token of this deployment." : err.message;
      return render(c, "Sign in", (csrf) => <SignInForm csrf={csrf} problem={problem} />, err.status === 429 ? 429 : 401);
    }
    await startSession(c, true);
    return c.redirect("/admin/", 303);
  });

  app.post("/sign-out", async (c) => {
    await endSession(c, c.get("session"));
    return c.redirect("/admin/sign-in", 303);
  });

  app.post("/sign-out-everywhere", async (c) => {
    await adminCall(c, "POST", "/console-sessions/revoke");
    await endSession(c, c.get("session"));
    return c.redirect("/admin/sign-in", 303);
  });
}
