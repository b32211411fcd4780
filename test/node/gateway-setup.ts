import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { newAssertionKey } from "../../src/forward/assertion-keys";
import { makeMigratedState, startDevGateway, startRecordingOrigin, type DevGateway } from "./dev-gateway";

/**
 * The node project's global setup: one gateway for the whole run (test/node/gateway-runtime.mjs:
 * zgate in workerd with wrangler dev's bindings), shared by the files that need a running gateway
 * (sharedDevGateway() in dev-gateway.ts), in front of one recording origin that stands
 * for the three origins. It boots when the first file asks for it, so a run of files that
 * need none does not pay for it. A broker on loopback hands it out, what the origin
 * received, by request id (the files run in processes of their own), what the gateway has
 * printed (for a test's failure message), the run's state directory with the D1
 * migrations applied, which every new gateway starts on a copy of, and the run's one
 * build of zgate (buildWorker), which every gateway serves.
 */
export default async function setup(project: TestProject) {
  const assertionKeys = { g1: newAssertionKey() };
  let origin: Awaited<ReturnType<typeof startRecordingOrigin>> | undefined;
  let gateway: Promise<DevGateway> | undefined;
  let migratedState: Promise<string> | undefined;
  const migrated = () => (migratedState ??= makeMigratedState());
  const workerDir = mkdtempSync(join(tmpdir(), "zgate-worker-"));
  let worker: Promise<string> | undefined;
  const built = () => (worker ??= buildWorker(workerDir));
  const boot = async () => {
    origin = await startRecordingOrigin();
    return startDevGateway(origin.url, assertionKeys, { migrated: await migrated(), worker: await built() });
  };

  const broker = createServer(async (req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === "POST" && req.url === "/migrated-state") return answer(200, { dir: await migrated() });
      if (req.method === "POST" && req.url === "/worker") return answer(200, { dir: await built() });
      if (req.method === "POST" && req.url === "/gateway") {
        const { port, adminToken } = await (gateway ??= boot());
        return answer(200, { port, adminToken, originUrl: origin!.url });
      }
      if (req.method === "GET" && req.url === "/log") return answer(200, { log: gateway ? (await gateway).log() : "" });
      const id = /^\/received\/(.+)$/.exec(req.url ?? "")?.[1];
      const seen = id && origin?.received.filter((r) => r.headers["x-request-id"] === decodeURIComponent(id)).at(-1);
      if (!seen) return answer(404, { error: "no such request" });
      return answer(200, { ...seen, body: seen.body.toString("base64") });
    } catch (err) {
      return answer(500, { error: (err as Error).message });
    }
  });
  await new Promise<void>((r) => broker.listen(0, "127.0.0.1", r));
  project.provide("devGatewayBroker", `http://127.0.0.1:${(broker.address() as AddressInfo).port}`);

  return async () => {
    broker.closeAllConnections();
    await new Promise((r) => broker.close(r));
    await (await gateway?.catch(() => undefined))?.stop();
    await origin?.close();
    const dir = await migratedState?.catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
    rmSync(workerDir, { recursive: true, force: true });
  };
}

/**
 * What every gateway of the run serves (test/node/gateway-runtime.mjs), in `dir`: zgate's
 * bundle (zgate.mjs), and the Miniflare options wrangler gives it for wrangler.toml's top
 * level (worker.json: its name, compatibility, vars, KV, D1, R2, Durable Objects, assets).
 * wrangler's API and the bench's bundler are loaded here, when a file first needs a
 * gateway: a second or two of CPU a run of files that need none would pay.
 */
async function buildWorker(dir: string): Promise<string> {
  const { unstable_getMiniflareWorkerOptions, unstable_readConfig } = await import("wrangler");
  // @ts-expect-error plain ESM script without types
  const { buildZgate } = await import("../../bench/workers.mjs");
  const root = new URL("../..", import.meta.url).pathname;
  const config = join(root, "wrangler.toml");
  const { workerOptions } = unstable_getMiniflareWorkerOptions(config);
  // Its rules are for modules wrangler finds unbundled; the bundle is one module.
  const { modulesRules: _, ...options } = workerOptions;
  writeFileSync(join(dir, "worker.json"), JSON.stringify({ ...options, name: unstable_readConfig({ config }).name }));
  await buildZgate(dir);
  return dir;
}
