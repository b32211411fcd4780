import type { z } from "@hono/zod-openapi";
import type { getKeyRoute } from "../admin/routes/get-key";
import type { keyUsageRoute } from "../admin/routes/key-usage";
import type { listAuditRoute } from "../admin/routes/list-audit";
import type { listKeysRoute } from "../admin/routes/list-keys";
import type { searchCallsRoute } from "../admin/routes/search-calls";

/**
 * The admin API's JSON as the console reads it: the 200 answer of each admin route, as
 * the route's own zod schema says (the same schema that writes the OpenAPI document), so
 * the console cannot read a field the API does not send.
 */
type Answer<R> = R extends { route: { responses: { 200: { content: { "application/json": { schema: infer S extends z.ZodType } } } } } }
  ? z.output<S>
  : never;

export type ApiKey = Answer<typeof getKeyRoute>;
export type KeyPage = Answer<typeof listKeysRoute>;
export type UsagePage = Answer<typeof keyUsageRoute>;
export type UsageCall = UsagePage["calls"][number];
export type AuditPage = Answer<typeof listAuditRoute>;
export type AuditEntry = AuditPage["entries"][number];
export type CallSearchPage = Answer<typeof searchCallsRoute>;
export type FoundCall = CallSearchPage["calls"][number];
export type KeySeen = CallSearchPage["keys"][number];
