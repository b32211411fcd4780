// A port for a process that binds it later (npm start, wrangler dev, redis-server): the
// node tests' (test/node) and bench:memory's (churn.mjs). Its types as importers see them:
// free-port.d.mts, which the export here satisfies.
/** @typedef {typeof import("./free-port.mjs")} Declared */
import { createServer } from "node:net";

// From below the kernel's ephemeral range (32768-60999 here): a port the kernel picks for
// `listen(0)` is one it may give any outbound connection's local end meanwhile, and in a
// full npm test one was taken in the seconds before wrangler dev bound it ("Address already
// in use"). Nothing here picks from this range by itself, so only another test could take it.
const FIRST = 20_000;
const COUNT = 12_000;

/**
 * A loopback port nothing is listening on right now, outside the kernel's ephemeral range.
 * @type {Declared["freePort"]}
 */
export async function freePort() {
  for (;;) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (await listens(port)) return port;
  }
}

/** @param {number} port */
function listens(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
