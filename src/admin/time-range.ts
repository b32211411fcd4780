import { z } from "@hono/zod-openapi";
import { GatewayError } from "../http/errors";

const time = z.iso.datetime({ offset: true });

/** The `since`/`until` query fields of every admin read of calls. */
export const timeRangeQuery = {
  since: time.optional().openapi({ description: "Only calls at or after this time" }),
  until: time.optional().openapi({ description: "Only calls at or before this time" }),
};

/** The range in ms (either end open when not given); 400 when it ends before it starts. */
export function timeRangeOf(q: { since?: string; until?: string }): { since?: number; until?: number } {
  const since = q.since === undefined ? undefined : Date.parse(q.since);
  const until = q.until === undefined ? undefined : Date.parse(q.until);
  if (since !== undefined && until !== undefined && since > until) throw new GatewayError("BAD_REQUEST", "since: must not be after until");
  return { since, until };
}
