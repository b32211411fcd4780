import { Hono } from "hono";
import type { AppEnv } from "../http/context";
import { GatewayError } from "../http/errors";
import { errorResponse } from "../http/on-error";
import { registerGithub } from "./routes/github";
import { registerGitlab } from "./routes/gitlab";
import { registerReport } from "./routes/report";

/**
 * `/security/v1`: leaked-key intake, open to the programs and people who find keys (no
 * admin credentials: partners prove themselves by signature, the public report is
 * limited per address). Gateway hosts only, like the admin API. Gateway error envelope.
 */
export function createSecurityApp() {
  const app = new Hono<AppEnv>();
  registerGithub(app);
  registerGitlab(app);
  registerReport(app);
  app.all("*", () => {
    throw new GatewayError("NOT_FOUND", "Not Found");
  });
  app.onError((err, c) => errorResponse(c, err, null));
  return app;
}
