import type { JSONWebKeySet } from "jose";
import { json, readJson, gatewayTrust, withSimulatorHooks, type Handler } from "./common";

/** ZappWay origin simulator: agents list and agent query. */
export interface ZappwaySimulatorOptions {
  /** The gateway's published keys (its JWK Set): every one it may sign with, old and new during a rotation. */
  assertionKeys: JSONWebKeySet;
}

const AGENTS = [
  { id: "agt_support", name: "Support Agent", model: "gpt-4o-mini" },
  { id: "agt_sales", name: "Sales Agent", model: "gpt-4o-mini" },
];

export function createZappwaySimulator(options: ZappwaySimulatorOptions): Handler {
  const error = (code: string, message: string, status: number) => json({ error: { code, message } }, status);
  const trusted = gatewayTrust({ assertionKeys: options.assertionKeys, audience: "zappway" });
  return withSimulatorHooks(async (request) => {
    const identity = await trusted(request);
    if (!identity) return error("UNAUTHORIZED", "Untrusted gateway identity", 401);
    const url = new URL(request.url);
    const path = url.pathname.replace(/^\/api(?:\/v1)?/, "");
    if (request.method === "GET" && path === "/agents") {
      return json({ data: AGENTS, meta: { page: 1, limit: 20, total: AGENTS.length } });
    }
    const query = /^\/agents\/(\w+)\/query$/.exec(path);
    if (request.method === "POST" && query) {
      const agent = AGENTS.find((a) => a.id === query[1]);
      if (!agent) return error("NOT_FOUND", "Agent not found", 404);
      const body = await readJson(request);
      if (typeof body?.query !== "string") return error("BAD_REQUEST", "query is required", 400);
      const conversationId = typeof body.conversationId === "string" ? body.conversationId : crypto.randomUUID();
      return json({ data: { answer: `${agent.name} (simulated): ${body.query}`, conversationId } });
    }
    return error("NOT_FOUND", "The requested resource does not exist", 404);
  });
}
