import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import type { Handler } from "./common";
import { createZakgtSimulator } from "./zakgt";
import { createZappwaySimulator } from "./zappway";
import { createZskySimulator, type Job, type JobStore } from "./zsky";

/** Serves the three origin simulators over loopback HTTP, each on its own port (0: any free port). */
export interface SimulatorSettings {
  /** The gateway signing secrets the origin accepts: old and new during a rotation. */
  signingSecrets: readonly string[];
  issuer: string;
  audience: string;
  host?: string;
  ports?: { zakgt: number; zsky: number; zappway: number };
  zskyCompleteAfterMs?: number;
  /** A JSON file the ZSky simulator keeps its jobs in, so they outlive a restart (npm start); none: memory only. */
  zskyJobsFile?: string;
}

export interface RunningSimulators {
  origins: { zakgt: string; zsky: string; zappway: string };
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

export async function startSimulators(settings: SimulatorSettings): Promise<RunningSimulators> {
  const host = settings.host ?? "127.0.0.1";
  const ports = settings.ports ?? { zakgt: 0, zsky: 0, zappway: 0 };
  const zakgt = await listen(await createZakgtSimulator(settings), host, ports.zakgt);
  const zsky = await listen(
    createZskySimulator({
      signingSecrets: settings.signingSecrets,
      completeAfterMs: settings.zskyCompleteAfterMs,
      jobStore: settings.zskyJobsFile ? jobFile(settings.zskyJobsFile) : undefined,
    }),
    host,
    ports.zsky,
  );
  const zappway = await listen(createZappwaySimulator(settings), host, ports.zappway);
  const servers = [zakgt.server, zsky.server, zappway.server];
  return {
    origins: { zakgt: zakgt.url, zsky: zsky.url, zappway: zappway.url },
    jwksUrl: `${zakgt.url}/.well-known/jwks.json`,
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((r) => {
              s.closeAllConnections();
              s.close(() => r());
            }),
        ),
      ).then(() => undefined),
  };
}
