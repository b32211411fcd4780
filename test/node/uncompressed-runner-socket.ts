import http from "node:http";

/**
 * vitest-pool-workers talks to each test runtime over a WebSocket that Miniflare opens with
 * the `ws` client, whose default offers permessage-deflate, and workerd accepts it: every
 * module sent to a runtime and every RPC between vitest and its tests was compressed on one
 * side of a loopback socket and inflated on the other. That was some 7 s of vitest's main
 * process (a sixth of its work) in the workers project, plus the runtimes' share: the
 * project took 141-146 s of CPU without it against 152-154 s with it, in alternating runs.
 * Neither Miniflare nor the pool lets the offer be turned off; `ws` makes its upgrade
 * request with `http.request`, so the offer is taken out there, for WebSocket upgrades only
 * (the server then answers without the extension, and `ws` sends frames as they are).
 */
const request = http.request;
http.request = ((options: http.RequestOptions, ...rest: unknown[]) => {
  const headers = options?.headers as Record<string, string> | undefined;
  if (headers?.Upgrade === "websocket") delete headers["Sec-WebSocket-Extensions"];
  return (request as (...args: unknown[]) => http.ClientRequest)(options, ...rest);
}) as typeof http.request;
