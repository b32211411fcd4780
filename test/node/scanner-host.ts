import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What a secret-scanning program and a leak-webhook receiver look like to zgate, on
 * loopback, one named slot per test:
 * - `PUT /keys/<name>` sets the key document `GET /keys/<name>` serves (a test's own
 *   P-256 keys); `GET /__fetches/<name>` says how often zgate fetched it;
 * - `POST /hooks/<name>` records a webhook delivery (headers and raw body) and answers
 *   500 to the first `fail` of them (`PUT /__fail/<name>` with `{"fail": n}`);
 *   `GET /__hooks/<name>` lists the deliveries.
 */
export async function startScannerHost(): Promise<{ url: string; server: Server }> {
  const documents = new Map<string, string>();
  const fetches = new Map<string, number>();
  const hooks = new Map<string, { headers: Record<string, string>; body: string }[]>();
  const failures = new Map<string, number>();
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const [, kind, name = ""] = new URL(req.url ?? "/", "http://scanner").pathname.split("/");
    const reply = (status: number, value?: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(value === undefined ? "" : JSON.stringify(value));
    };
    if (kind === "keys" && req.method === "PUT") return (documents.set(name, body), reply(204));
    if (kind === "keys") {
      fetches.set(name, (fetches.get(name) ?? 0) + 1);
      const document = documents.get(name);
      if (document === undefined) return reply(404, { message: "Not Found" });
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(document);
    }
    if (kind === "__fetches") return reply(200, { fetches: fetches.get(name) ?? 0 });
    if (kind === "__fail") return (failures.set(name, JSON.parse(body).fail), reply(204));
    if (kind === "hooks") {
      const list = hooks.get(name) ?? [];
      hooks.set(name, list);
      list.push({ headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])), body });
      const fail = failures.get(name) ?? 0;
      if (fail > 0) return (failures.set(name, fail - 1), reply(500, { error: "try again" }));
      return reply(200, { ok: true });
    }
    if (kind === "__hooks") return reply(200, { deliveries: hooks.get(name) ?? [] });
    reply(404, { message: "Not Found" });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
