import { createRoute, z } from "@hono/zod-openapi";
import { GatewayError } from "../../http/errors";
import { prefixFor } from "../../keys/key-format";
import { productById, products } from "../../products/index";
import { importKey, issueKey } from "../../keys/key-lifecycle";
import { keyView, limitOverrideFromApi, limitOverrideSchema, scopesSchema } from "../../keys/views";
import { adminRoute } from "../admin-route";
import * as clock from "../../util/clock";
import { AccountIdSchema, ADMIN_ERRORS, ADMIN_SECURITY, json, KeySchema, ProductSchema } from "../schemas";

const Body = z
  .object({
    product: ProductSchema,
    account: AccountIdSchema,
    label: z.string().trim().min(1).max(100).optional(),
    plan: z.string().min(1).max(50).optional(),
    scopes: scopesSchema.optional(),
    limit_override: limitOverrideSchema
      .optional()
      .openapi({ description: "Per-key limits: window limits by policy name, lifted daily caps" }),
    expires_at: z.iso.datetime({ offset: true }).optional(),
    mode: z.enum(["live", "test"]).optional().openapi({ description: "ZakGT only: `test` issues a zak_test_ key" }),
    import_key: z.string().min(8).max(512).optional().openapi({ description: "Register an existing key by its plaintext" }),
    import_sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/)
      .optional()
      .openapi({ description: "Register an existing key by its SHA-256 (hex)" }),
  })
  .strict()
  .refine((b) => !(b.import_key && b.import_sha256), { message: "give import_key or import_sha256, not both", path: ["import_key"] })
  .refine((b) => prefixFor(b.product, b.mode) !== undefined, {
    error: () =>
      `test keys exist only for products with a test mode (${products()
        .filter((p) => p.keyPrefixes.test)
        .map((p) => p.id)
        .join(", ")})`,
    path: ["mode"],
  });

const route = createRoute({
  method: "post",
  path: "/keys",
  summary: "Create a key (or register an existing one) for any product and account",
  tags: ["admin"],
  security: ADMIN_SECURITY,
  request: { body: { required: true, content: { "application/json": { schema: Body } } } },
  responses: {
    201: json(
      KeySchema.extend({ key: z.string().optional().openapi({ description: "The plaintext key, shown this once (absent for imports)" }) }),
      "Created",
    ),
    409: {
      description:
        "The imported key is already registered, or the account (or ZakGT user) already holds MAX_ACTIVE_KEYS_PER_ACCOUNT (MAX_ACTIVE_KEYS_PER_USER) active keys",
      content: ADMIN_ERRORS[400].content,
    },
    ...ADMIN_ERRORS,
  },
});

export const createKeyRoute = adminRoute(route, async (c) => {
  const body = c.req.valid("json");
  const expiresAt = body.expires_at ? Date.parse(body.expires_at) : null;
  if (expiresAt !== null && expiresAt <= clock.now()) throw new GatewayError("BAD_REQUEST", "expires_at: must be in the future");
  const spec = {
    product: body.product,
    accountId: body.account,
    // A ZakGT account is a user: the user owns the key.
    ownerUserId: productById(body.product)?.accountIsUser ? body.account : null,
    label: body.label,
    plan: body.plan,
    scopes: body.scopes,
    limitOverride: body.limit_override ? limitOverrideFromApi(body.limit_override) : null,
    expiresAt,
    mode: body.mode,
  };
  const by = { actor: c.get("actor"), requestId: c.get("requestId") };
  if (body.import_key !== undefined || body.import_sha256 !== undefined) {
    const record = await importKey(c.env, spec, { plaintext: body.import_key, sha256: body.import_sha256 }, by);
    return c.json(keyView(record), 201);
  }
  const { record, secret } = await issueKey(c.env, spec, by);
  return c.json({ ...keyView(record), key: secret }, 201);
});
