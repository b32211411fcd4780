import { createRoute, z } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { AppEnv } from "../../http/context";
import { takeLeakReports } from "../leak-intake";
import { SCANNER_ERRORS, signedBody } from "../schemas";
import { signedReports } from "../scanner-request";

const Report = z.object({ type: z.string().max(200), token: z.string().min(1).max(1000), url: z.string().max(2000).nullish() });
// GitLab sends one report a request; a list is taken too.
const Body = z.union([Report, z.array(Report).min(1).max(1000)]);

export const route = createRoute({
  method: "post",
  path: "/secret-scanning/gitlab",
  summary: "GitLab token-revocation endpoint: revokes zgate keys GitLab found leaked",
  description:
    "GitLab posts `{type, token, url}`, signed like GitHub's reports (`Gitlab-Public-Key-Identifier`, `Gitlab-Public-Key-Signature`) with a key from SECRET_SCANNING_GITLAB_KEYS_URL. Any 2xx tells GitLab the report was processed (it retries otherwise). An existing zgate key is revoked (audit actor `secret-scanning:gitlab`) as on GitHub's endpoint.",
  tags: ["security"],
  request: { body: signedBody(Body, "The report, as GitLab sends it") },
  responses: { 204: { description: "Processed (whether or not the token was a zgate key)" }, ...SCANNER_ERRORS },
});

export function registerGitlab(app: Hono<AppEnv>) {
  app.post(route.path, async (c) => {
    const settings = c.get("settings");
    const body = await signedReports(c, { headerPrefix: "Gitlab", keysUrl: settings.SECRET_SCANNING_GITLAB_KEYS_URL }, Body);
    const reports = Array.isArray(body) ? body : [body];
    await takeLeakReports(
      c,
      reports.map((r) => ({
        token: r.token,
        reporter: "secret-scanning:gitlab",
        authenticated: true,
        sourceUrl: r.url ?? null,
        detail: { token_type: r.type },
      })),
    );
    return c.body(null, 204);
  });
}
