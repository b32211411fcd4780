import { createRoute, z } from "@hono/zod-openapi";
import type { Hono } from "hono";
import type { AppEnv } from "../../http/context";
import { takeLeakReports } from "../leak-intake";
import { SCANNER_ERRORS, signedBody } from "../schemas";
import { signedReports } from "../scanner-request";

const Report = z.object({
  token: z.string().min(1).max(1000),
  type: z.string().max(200),
  url: z.string().max(2000).nullish(),
  source: z.string().max(200).nullish(),
});
const Batch = z.array(Report).min(1).max(1000);

const Answer = z
  .array(
    z.object({
      token_hash: z.string().openapi({ description: "SHA-256 (hex) of the reported token: the plaintext is never echoed" }),
      token_type: z.string(),
      label: z.enum(["true_positive", "false_positive"]),
    }),
  )
  .openapi("SecretScanningAnswer");

export const route = createRoute({
  method: "post",
  path: "/secret-scanning/github",
  summary: "GitHub secret-scanning partner endpoint: revokes zgate keys found in public pushes",
  description:
    "GitHub posts the tokens matching zgate's key patterns, signed (`Github-Public-Key-Signature`: base64 DER ECDSA P-256 SHA-256 over the raw body) with a key from SECRET_SCANNING_GITHUB_KEYS_URL named by `Github-Public-Key-Identifier`. Each existing zgate key is revoked (audit actor `secret-scanning:github`, with the source URL) with its rotations and result links, and announced to LEAK_WEBHOOK_URL; repeats change nothing.",
  tags: ["security"],
  request: { body: signedBody(Batch, "The reports, as GitHub sends them") },
  responses: { 200: { description: "One label per report", content: { "application/json": { schema: Answer } } }, ...SCANNER_ERRORS },
});

export function registerGithub(app: Hono<AppEnv>) {
  app.post(route.path, async (c) => {
    const settings = c.get("settings");
    const batch = await signedReports(c, { headerPrefix: "Github", keysUrl: settings.SECRET_SCANNING_GITHUB_KEYS_URL }, Batch);
    const answers = await takeLeakReports(
      c,
      batch.map((r) => ({
        token: r.token,
        reporter: "secret-scanning:github",
        authenticated: true,
        sourceUrl: r.url ?? null,
        detail: { token_type: r.type, source: r.source ?? null },
      })),
    );
    return c.json(
      batch.map((r) => {
        const answer = answers.get(r.token)!;
        return { token_hash: answer.hash, token_type: r.type, label: answer.truePositive ? "true_positive" : "false_positive" };
      }),
      200,
    );
  });
}
