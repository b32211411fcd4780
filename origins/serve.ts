import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { JSONWebKeySet } from "jose";
import { dirname } from "node:path";
import type { Handler } from "./common";
import { createZakgtSimulator } from "./zakgt";
import { createZappwaySimulator } from "./zappway";
import { createZskySimulator, type Job, type JobStore } from "./zsky";

/** A registered product, as far as its simulator goes (src/products/index.ts `products()`). */
export interface SimulatedProduct {
  id: string;
  originSetting: string;
}

/** Serves an origin simulator for every registered product over loopback HTTP, each on its own port (0: any free port). */
export interface SimulatorSettings {
  /** The registered products: each gets its simulator. */
  products: readonly SimulatedProduct[];
  /** The gateway's published keys (its `/.well-known/jwks.json`): every simulator verifies assertions with them. */
  assertionKeys: JSONWebKeySet;
  issuer: string;
  audience: string;
  host?: string;
  /** By product id, in the registry's order when given as a list (`ZGATE_SIM_PORTS`); absent: any free port. */
  ports?: Partial<Record<string, number>>;
  zskyCompleteAfterMs?: number;
  /** A JSON file the ZSky simulator keeps its jobs in, so they outlive a restart (npm start); none: memory only. */
  zskyJobsFile?: string;
}

export interface RunningSimulators {
  /** Each product's simulator, by product id. */
  origins: Record<string, string>;
  /** The same, by the setting that names a product's origin (`ORIGIN_ZAKGT`, ...): what a gateway's env takes. */
  originSettings: Record<string, string>;
  jwksUrl: string;
  close(): Promise<void>;
}

async function toRequest(req: IncomingMessage, base: string): Promise<Request> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
  return new Request(new URL(req.url ?? "/", base), { method: req.method, headers, body });
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  res.writeHead(response.status, Object.fromEntries([...response.headers.entries()]));
  res.end(Buffer.from(await response.arrayBuffer()));
}

function listen(handler: Handler, host: string, port: number): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const base = `http://${host}:${(server.address() as AddressInfo).port}`;
    toRequest(req, base)
      .then(handler)
      .then((response) => send(res, response))
      .catch(() => {
        res.writeHead(500, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: "simulator failure" }));
      });
  });
  // Idle connections are the gateway's to close. Node closes them after 5 s by default, and a
  // request the runtime sends on one as Node closes it fails (the gateway answers 502): seen
  // twice at the start of a leases.test burst in a full npm test.
  server.keepAliveTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve({ server, url: `http://${host}:${(server.address() as AddressInfo).port}` }));
  });
}

/**
 * The ZSky simulator's jobs in a JSON file, rewritten whole on each change (a local
 * simulator holds a handful), through a rename so a crash never leaves half a file.
 */
function jobFile(path: string): JobStore {
  return {
    load() {
      if (!existsSync(path)) return [];
      try {
        const jobs: unknown = JSON.parse(readFileSync(path, "utf8"));
        if (Array.isArray(jobs)) return jobs as Job[];
      } catch {}
      throw new Error(`${path} is not a list of simulated ZSky jobs: delete it to start with none`);
    },
    save(jobs) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(`${path}.tmp`, JSON.stringify(jobs));
      renameSync(`${path}.tmp`, path);
    },
  };
}

/**
 * The simulator of each product's reference (origins/<id>.ts), by product id. Every
 * registered product needs one: startSimulators refuses to start without it, and
 * test/product-registry.test.ts fails naming the product.
 */
const SIMULATORS: Record<string, (settings: SimulatorSettings) => Handler | Promise<Handler>> = {
  zakgt: (settings) => createZakgtSimulator(settings),
  zsky: (settings) =>
    createZskySimulator({
      assertionKeys: settings.assertionKeys,
      completeAfterMs: settings.zskyCompleteAfterMs,
      jobStore: settings.zskyJobsFile ? jobFile(settings.zskyJobsFile) : undefined,
    }),
  zappway: (settings) => createZappwaySimulator(settings),
};

export async function startSimulators(settings: SimulatorSettings): Promise<RunningSimulators> {
  const host = settings.host ?? "127.0.0.1";
  const running: { id: string; setting: string; server: Server; url: string }[] = [];
  try {
    for (const product of settings.products) {
      const simulator = SIMULATORS[product.id];
      if (!simulator)
        throw new Error(`no origin simulator for ${product.id}: add origins/${product.id}.ts to SIMULATORS in origins/serve.ts`);
      const { server, url } = await listen(await simulator(settings), host, settings.ports?.[product.id] ?? 0);
      running.push({ id: product.id, setting: product.originSetting, server, url });
    }
  } catch (err) {
    await closeAll(running.map((r) => r.server));
    throw err;
  }
  const origins: Record<string, string> = Object.fromEntries(running.map((r) => [r.id, r.url]));
  return {
    origins,
    originSettings: Object.fromEntries(running.map((r) => [r.setting, r.url])),
    jwksUrl: `${origins.zakgt}/.well-known/jwks.json`,
    close: () => closeAll(running.map((r) => r.server)),
  };
}

function closeAll(servers: Server[]): Promise<void> {
  return Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  ).then(() => undefined);
}
