import { z } from "@hono/zod-openapi";
import type { OperationDoc } from "../types";

/** ZappWay's bodies as its reference gives them (docs/contracts.md). */
export const ZappwayError = z
  .object({ error: z.object({ code: z.string(), message: z.string() }) })
  .openapi("ZappwayError", { example: { error: { code: "UNAUTHORIZED", message: "Invalid or expired API key." } } });

export const ZappwaySuccess = z
  .object({ data: z.unknown(), meta: z.object({ page: z.number(), limit: z.number(), total: z.number() }).partial().optional() })
  .openapi("ZappwaySuccess");
// Request bodies of the endpoints the reference shows, as its examples show them (passed to the origin unread).
const ZappwayAgentQuery = z
  .looseObject({ query: z.string(), conversationId: z.string().optional() })
  .openapi("ZappwayAgentQuery", { example: { query: "What is your return policy?" } });
const ZappwayDatastoreUpsert = z
  .looseObject({
    documents: z.array(z.looseObject({ id: z.string(), text: z.string(), metadata: z.record(z.string(), z.unknown()).optional() })),
  })
  .openapi("ZappwayDatastoreUpsert", {
    example: { documents: [{ id: "doc-123", text: "Updated product description...", metadata: { source: "cms" } }] },
  });

// The endpoints zappway-api-keys.md names under its modules ("Common Use Cases"). Their
// bodies go to the origin as they are: the schemas are the reference's examples.
export const ZAPPWAY_ENDPOINTS: Record<string, OperationDoc["endpoints"]> = {
  agents: [
    {
      name: "query",
      method: "post",
      path: "/{agentId}/query",
      summary: "Send a message to an agent and receive its answer.",
      request: ZappwayAgentQuery,
    },
    {
      name: "conversations",
      method: "get",
      path: "/{agentId}/conversations",
      summary: "An agent's conversation logs and captured contacts (`?limit=&after=`).",
    },
  ],
  datastores: [
    {
      name: "upsert",
      method: "post",
      path: "/{datastoreId}/upsert",
      summary: "Upsert documents into a datastore.",
      request: ZappwayDatastoreUpsert,
    },
  ],
};
