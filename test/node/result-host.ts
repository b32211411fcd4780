import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A host other than the ZSky origin that a `result_url` can name, on loopback:
 * - `/image.png?t=<tag>`: a small PNG with its Content-Length;
 * - `/short.png?t=<tag>`: declares 4 MiB, sends 256 KiB, then drops the connection
 *   (a lying Content-Length);
 * - `/__seen?t=<tag>`: `{"seen": true}` once any request carried that tag, so a test
 *   can tell that the gateway never fetched a refused URL.
 */
export async function startResultHost(): Promise<{ url: string; server: Server }> {
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://result-host");
    const tag = url.searchParams.get("t") ?? "";
    if (url.pathname === "/__seen") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ seen: seen.has(tag) }));
      return;
    }
    seen.add(tag);
    if (url.pathname === "/image.png") {
      const png = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3, 4]);
      res.writeHead(200, { "Content-Type": "image/png", "Content-Length": String(png.length) });
      res.end(png);
    } else if (url.pathname === "/short.png") {
      res.writeHead(200, { "Content-Type": "image/png", "Content-Length": String(4 * 1024 * 1024) });
      res.write(Buffer.alloc(256 * 1024, 7), () => res.destroy());
    } else {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end('{"error":"Not found"}');
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
