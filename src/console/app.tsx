import { Hono, type MiddlewareHandler } from "hono";
import type { ConsoleEnv, GatewayFetch } from "./admin-client";
import { registerAudit } from "./pages/audit";
import { registerCalls } from "./pages/calls";
import { registerKeyActions } from "./pages/key-actions";
import { registerKeyDetail } from "./pages/key-detail";
import { registerLeaks } from "./pages/leaks";
import { registerNewKey } from "./pages/new-key";
import { registerSearch } from "./pages/search";
import { registerSignIn } from "./pages/sign-in";
import { render, renderError } from "./render";
import { consoleSecurityHeaders } from "./security-headers";
import { CONSOLE_PATH, readSession, validCsrf } from "./session";
import { CONSOLE_CSS } from "./styles";
import { Notice } from "./layout";

/** Every POST carries the CSRF token of the session it was rendered for, or it is refused (403) before anything runs. */
const csrfCheck: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (c.req.method !== "POST") return next();
  const session = c.get("session");
  const form: Record<string, unknown> = await c.req.parseBody().catch(() => ({}));
  if (!session || !(await validCsrf(session, form.csrf))) {
    return render(
      c,
      "Refused",
      () => (
        <Notice kind="error">
          This form was not sent from a page of this console session (missing or wrong CSRF token). Nothing was changed.{" "}
          <a href="/admin/">Start again</a>.
        </Notice>
      ),
      403,
    );
  }
  return next();
};

/** Pages need a signed-in session; without one, the sign-in page. */
const signedIn: MiddlewareHandler<ConsoleEnv> = async (c, next) => {
  if (c.get("session")?.signedIn) return next();
  return c.redirect("/admin/sign-in", 303);
};

/**
 * `/admin/`: the security console, for people, on gateway hosts only (mounted beside
 * `/admin/v1` in src/app.ts). Server-rendered HTML with no script; every read and
 * action is an admin API call made in-process under the signed-in identity.
 */
export function createConsoleApp(gatewayFetch: GatewayFetch) {
  const app = new Hono<ConsoleEnv>();
  app.use("*", consoleSecurityHeaders);
  // Before the session is read: a stylesheet needs no session, and reading one asks the admin guard.
  app.get("/console.css", (c) => c.body(CONSOLE_CSS, 200, { "Content-Type": "text/css; charset=utf-8" }));
  app.use("*", async (c, next) => {
    c.set("gatewayFetch", gatewayFetch);
    c.set("session", await readSession(c));
    await next();
  });
  app.use("*", csrfCheck);
  registerSignIn(app);
  app.use("*", signedIn);
  registerSearch(app);
  // Before the key pages: `/keys/new` is no key id.
  registerNewKey(app);
  registerKeyDetail(app);
  registerKeyActions(app);
  registerCalls(app);
  registerAudit(app);
  registerLeaks(app);
  app.all("*", async (c) => {
    if (c.req.path === CONSOLE_PATH) return c.redirect(`${CONSOLE_PATH}/`, 308);
    return render(c, "Not found", () => <Notice kind="error">No such console page.</Notice>, 404);
  });
  app.onError((err, c) => renderError(c, err));
  return app;
}
