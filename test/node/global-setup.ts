import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";
import { startSimulators } from "../../origins/serve";
// @ts-expect-error plain ESM script without types
import { importTs } from "../../scripts/import-ts.mjs";
import { startRedis } from "./redis-server";
import { startResultHost } from "./result-host";
import { startScannerHost } from "./scanner-host";
import { startUpstashRestServer } from "./upstash-rest-server";

/**
 * Starts, for the whole run, an origin simulator for each registered product and (for the Upstash limiter
 * backend) a real redis-server behind an Upstash REST server, all on loopback. Without
 * redis-server the Upstash tests are skipped locally; in CI that is a failure.
 */
export default async function setup(project: TestProject) {
  const { products } = await importTs("src/products/index.ts");
  const { newAssertionKey, publishedKeys } = await importTs("src/forward/assertion-keys.ts");
  // The gateway's assertion key; a second one is what a rotation moves to (test/forwarding.test.ts).
  const assertionKeys = { t1: newAssertionKey() };
  const nextAssertionKey = newAssertionKey();
  const sims = await startSimulators({
    products: products(),
    assertionKeys: await publishedKeys(assertionKeys),
    issuer: "https://api.zakgt.net",
    audience: "zakgt-api",
    zskyCompleteAfterMs: 100,
  });
  project.provide("simulators", {
    origins: sims.origins as { zakgt: string; zsky: string; zappway: string },
    originSettings: sims.originSettings,
    jwksUrl: sims.jwksUrl,
    assertionKeys: JSON.stringify(assertionKeys),
    nextAssertionKey,
  });

  // A server that accepts requests and never answers: dependency timeouts.
  const blackhole = createServer(() => undefined);
  await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
  project.provide("blackhole", `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`);

  // A server that answers 200 with half a JSON body and then stalls: an origin failing mid-body.
  const stalledBody = createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.write('{"job_id": "job_stalled", ');
  });
  await new Promise<void>((r) => stalledBody.listen(0, "127.0.0.1", r));
  project.provide("stalledBody", `http://127.0.0.1:${(stalledBody.address() as AddressInfo).port}`);

  // A host besides the ZSky origin that results can point at (foreign hosts, a lying Content-Length).
  const resultHost = await startResultHost();
  project.provide("resultHost", resultHost.url);

  // A secret-scanning program's key document and a leak-webhook receiver.
  const scannerHost = await startScannerHost();
  project.provide("scannerHost", scannerHost.url);

  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let rest: Awaited<ReturnType<typeof startUpstashRestServer>> | undefined;
  try {
    redis = await startRedis();
    const token = randomBytes(16).toString("hex");
    rest = await startUpstashRestServer({ redisPort: redis.port, token });
    project.provide("upstash", { url: rest.url, token });
  } catch (err) {
    if (process.env.CI) throw err;
    console.warn(`Upstash limiter tests will be skipped: ${(err as Error).message}`);
    project.provide("upstash", null);
  }
  return async () => {
    await rest?.close();
    await redis?.stop();
    await sims.close();
    blackhole.closeAllConnections();
    await new Promise((r) => blackhole.close(r));
    stalledBody.closeAllConnections();
    await new Promise((r) => stalledBody.close(r));
    resultHost.server.closeAllConnections();
    await new Promise((r) => resultHost.server.close(r));
    scannerHost.server.closeAllConnections();
    await new Promise((r) => scannerHost.server.close(r));
  };
}
