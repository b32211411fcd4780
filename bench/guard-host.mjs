// Bench-only Worker that hosts zgate's AccountGuard Durable Object class and nothing
// else, so the guard can be measured without zgate's edge pipeline in front of it.
// Bundled by bench/workers.mjs with esbuild (which compiles the TypeScript import).
export { AccountGuard } from "../src/guard/account-guard";

/** @type {ExportedHandler} */
export default {
  fetch() {
    return new Response("guard host: call the AccountGuard through the driver", { status: 404 });
  },
};
