import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A local stand-in for the part of the Cloudflare API (v4) that docs/deploy.md's steps reach
 * through wrangler (`CLOUDFLARE_API_BASE_URL`): Workers scripts, versions, deployments,
 * secrets and workers.dev, KV namespaces, D1 databases and their queries, R2 buckets. It
 * keeps one account's state in memory, answers in the API's envelope with the error codes
 * wrangler acts on, and records every call for the test to assert on. It refuses what the
 * real API refuses and the deploy path could run into: a token other than the one given,
 * a first version through `versions upload` (the Worker must exist), a version upload
 * that carries a Durable Object migration, a second resource with a taken name.
 */

export interface Call {
  method: string;
  /** The path below /client/v4, with its query string. */
  path: string;
  body: string;
}

interface Version {
  id: string;
  number: number;
  created_on: string;
  /** The upload's metadata part (bindings, migrations, annotations, ...). */
  metadata: Record<string, unknown>;
  secrets: Record<string, string>;
}

interface Script {
  name: string;
  tag: string;
  created_on: string;
  migration_tag?: string;
  versions: Version[];
  /** Newest first, as the API lists them. */
  deployments: { id: string; created_on: string; versions: { version_id: string; percentage: number }[]; annotations?: object }[];
  subdomain: { enabled: boolean; previews_enabled: boolean };
  schedules: { cron: string }[];
  settings: Record<string, unknown>;
}

interface D1 {
  uuid: string;
  name: string;
  created_at: string;
  /** Whether `wrangler d1 migrations` made its bookkeeping table, and the names in it, in the order applied. */
  migrationsTable: boolean;
  migrations: string[];
  /** Every statement batch run on it. */
  queries: string[];
}

export interface CloudflareApi {
  /** The CLOUDFLARE_API_BASE_URL to give wrangler. */
  baseUrl: string;
  /** CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_BASE_URL for wrangler. */
  env: Record<string, string>;
  calls: Call[];
  accountId: string;
  scripts: Map<string, Script>;
  kv: { id: string; title: string }[];
  d1: D1[];
  r2: { name: string; creation_date: string }[];
  close(): Promise<void>;
}

const ok = (result: unknown, extra: object = {}) => ({ success: true, errors: [], messages: [], result, ...extra });
const fail = (code: number, message: string) => ({ success: false, errors: [{ code, message }], messages: [], result: null });
const now = () => new Date().toISOString();
const hexId = () => randomBytes(16).toString("hex");

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** One page of a list (`page`, `per_page`), as the API pages them. */
function page<T>(items: T[], url: URL): T[] {
  const at = Number(url.searchParams.get("page") ?? 1);
  const per = Number(url.searchParams.get("per_page") ?? 20);
  return items.slice((at - 1) * per, at * per);
}

const SCRIPT_NOT_FOUND = () => new ApiError(404, 10007, "workers.api.error.script_not_found");

export async function startCloudflareApi(subdomain = "zgate-test"): Promise<CloudflareApi> {
  const accountId = hexId();
  const token = `stand-in-${hexId()}`;
  const calls: Call[] = [];
  const scripts = new Map<string, Script>();
  const kv: CloudflareApi["kv"] = [];
  const d1: D1[] = [];
  const r2: CloudflareApi["r2"] = [];

  const script = (name: string) => {
    const found = scripts.get(name);
    if (!found) throw SCRIPT_NOT_FOUND();
    return found;
  };
  const current = (s: Script) => {
    const id = s.deployments[0]?.versions.find((v) => v.percentage === 100)?.version_id;
    return s.versions.find((v) => v.id === id) ?? s.versions.at(-1);
  };
  const deploy = (s: Script, versions: { version_id: string; percentage: number }[], annotations?: object) => {
    const deployment = { id: randomUUID(), created_on: now(), versions, annotations };
    s.deployments.unshift(deployment);
    return deployment;
  };
  /** A version from a script upload form (`PUT .../scripts/:name`, `POST .../versions`). */
  const addVersion = (s: Script, metadata: Record<string, unknown>) => {
    const before = current(s)?.secrets ?? {};
    const secrets = { ...before };
    for (const b of (metadata.bindings as { type: string; name: string; text?: string }[]) ?? [])
      if (b.type === "secret_text" && b.text !== undefined) secrets[b.name] = b.text;
    const version: Version = { id: randomUUID(), number: s.versions.length + 1, created_on: now(), metadata, secrets };
    s.versions.push(version);
    const migrations = metadata.migrations as { new_tag?: string } | undefined;
    if (migrations?.new_tag) s.migration_tag = migrations.new_tag;
    return version;
  };
  /** The bindings a version serves with, as the settings endpoints list them (secrets without values). */
  const bindingsOf = (v: Version | undefined) => [
    ...((v?.metadata.bindings as { type: string; name: string }[]) ?? []).filter((b) => b.type !== "secret_text"),
    ...Object.keys(v?.secrets ?? {}).map((name) => ({ type: "secret_text", name })),
  ];
  const scriptSummary = (s: Script) => ({
    id: s.name,
    tag: s.tag,
    tags: [],
    created_on: s.created_on,
    modified_on: s.versions.at(-1)?.created_on ?? s.created_on,
    migration_tag: s.migration_tag,
    last_deployed_from: "wrangler",
    usage_model: "standard",
  });
  const versionView = (v: Version) => ({
    id: v.id,
    number: v.number,
    metadata: {
      created_on: v.created_on,
      modified_on: v.created_on,
      source: "wrangler",
      author_email: "stand-in@example.com",
      has_preview: false,
    },
    annotations: v.metadata.annotations ?? {},
    resources: { bindings: bindingsOf(v), script: { etag: v.id, handlers: ["fetch", "scheduled"] } },
  });

  async function form(req: Request): Promise<Record<string, unknown>> {
    const data = await req.formData();
    return JSON.parse(String(data.get("metadata") ?? data.get("settings") ?? "{}")) as Record<string, unknown>;
  }

  async function route(method: string, path: string, url: URL, req: Request): Promise<unknown> {
    const account = `/accounts/${accountId}`;
    if (!path.startsWith(account)) throw new ApiError(403, 9109, "Unauthorized to access requested resource");
    const p = path.slice(account.length);
    let m: RegExpMatchArray | null;

    // Workers scripts
    if (method === "GET" && p === "/workers/scripts") return [...scripts.values()].map(scriptSummary);
    if (method === "GET" && p === "/workers/subdomain") return { subdomain };
    if ((m = p.match(/^\/workers\/services\/([^/]+)$/)) && method === "GET") {
      const s = script(m[1]!);
      return { id: s.name, default_environment: { environment: "production", script: scriptSummary(s) } };
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)$/)) && method === "PUT") {
      // A whole upload that deploys at once: `wrangler deploy` of a new Worker, or
      // `wrangler secret bulk`'s empty draft when the Worker does not exist yet.
      const name = m[1]!;
      const existing = scripts.get(name);
      const s: Script = existing ?? {
        name,
        tag: hexId(),
        created_on: now(),
        versions: [],
        deployments: [],
        subdomain: { enabled: false, previews_enabled: false },
        schedules: [],
        settings: {},
      };
      scripts.set(name, s);
      const version = addVersion(s, await form(req));
      deploy(s, [{ version_id: version.id, percentage: 100 }]);
      return { id: name, etag: version.id, deployment_id: version.id, startup_time_ms: 5 };
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/versions$/)) && method === "POST") {
      const s = script(m[1]!);
      const metadata = await form(req);
      const migrations = metadata.migrations as { steps?: unknown[] } | undefined;
      if (migrations?.steps?.length)
        throw new ApiError(400, 10211, "Version upload failed. You attempted to upload a version with Durable Object migrations");
      const version = addVersion(s, metadata);
      return { ...versionView(version), startup_time_ms: 5, resources: { script: { etag: version.id }, bindings: bindingsOf(version) } };
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/versions$/)) && method === "GET")
      return { items: [...script(m[1]!).versions].reverse().map(versionView) };
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/versions\/([^/]+)$/)) && method === "GET") {
      const v = script(m[1]!).versions.find((x) => x.id === m![2]);
      if (!v) throw new ApiError(404, 10230, "version not found");
      return versionView(v);
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/deployments$/))) {
      const s = script(m[1]!);
      if (method === "GET") return { deployments: s.deployments };
      if (method === "POST") {
        const body = (await req.json()) as { versions: { version_id: string; percentage: number }[]; annotations?: object };
        for (const v of body.versions)
          if (!s.versions.some((x) => x.id === v.version_id)) throw new ApiError(404, 10230, `version ${v.version_id} not found`);
        return deploy(s, body.versions, body.annotations);
      }
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/settings$/))) {
      const s = script(m[1]!);
      if (method === "GET") return { ...s.settings, bindings: bindingsOf(current(s)) };
      if (method === "PATCH") {
        // `wrangler secret bulk`: the bindings to keep, and the secrets to set. A new version, deployed at once.
        const { bindings } = (await form(req)) as { bindings: { type: string; name: string; text?: string }[] };
        const base = current(s);
        const kept = ((base?.metadata.bindings as { type: string; name: string }[]) ?? []).filter((b) => b.type !== "secret_text");
        const version = addVersion(s, { ...base?.metadata, bindings: [...kept, ...bindings.filter((b) => b.type === "secret_text")] });
        const secrets = new Set(bindings.filter((b) => b.type === "secret_text").map((b) => b.name));
        for (const name of Object.keys(version.secrets)) if (!secrets.has(name)) delete version.secrets[name];
        deploy(s, [{ version_id: version.id, percentage: 100 }]);
        return { bindings: bindingsOf(version) };
      }
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/secrets$/)) && method === "GET")
      return Object.keys(current(script(m[1]!))?.secrets ?? {}).map((name) => ({ name, type: "secret_text" }));
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/script-settings$/)) && method === "PATCH") {
      const s = script(m[1]!);
      s.settings = { ...s.settings, ...((await req.json()) as object) };
      return s.settings;
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/subdomain$/))) {
      const s = script(m[1]!);
      if (method === "POST") {
        const body = (await req.json()) as { enabled: boolean; previews_enabled?: boolean };
        s.subdomain = { enabled: body.enabled, previews_enabled: body.previews_enabled ?? s.subdomain.previews_enabled };
      }
      return s.subdomain;
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/schedules$/)) && method === "PUT") {
      const s = script(m[1]!);
      s.schedules = (await req.json()) as { cron: string }[];
      return { schedules: s.schedules };
    }
    if ((m = p.match(/^\/workers\/scripts\/([^/]+)\/assets-upload-session$/)) && method === "POST") {
      script(m[1]!);
      // Every file already stored: the manifest is enough for a completion token.
      return { jwt: `assets-${hexId()}`, buckets: [] };
    }

    // KV namespaces
    if (p === "/storage/kv/namespaces") {
      if (method === "GET") return page(kv, url);
      if (method === "POST") {
        const { title } = (await req.json()) as { title: string };
        if (kv.some((n) => n.title === title)) throw new ApiError(400, 10014, "a namespace with this account ID and title already exists");
        const ns = { id: hexId(), title };
        kv.push(ns);
        return ns;
      }
    }

    // D1 databases
    if (p === "/d1/database") {
      if (method === "GET") {
        const name = url.searchParams.get("name");
        return page(
          d1
            .filter((db) => !name || db.name === name)
            .map(({ uuid, name, created_at }) => ({ uuid, name, created_at, version: "production" })),
          url,
        );
      }
      if (method === "POST") {
        const { name } = (await req.json()) as { name: string };
        if (d1.some((db) => db.name === name)) throw new ApiError(400, 7502, "A database with that name already exists");
        const db: D1 = { uuid: randomUUID(), name, created_at: now(), migrationsTable: false, migrations: [], queries: [] };
        d1.push(db);
        return { uuid: db.uuid, name, created_at: db.created_at };
      }
    }
    if ((m = p.match(/^\/d1\/database\/([^/]+)$/)) && method === "GET") {
      const db = d1.find((x) => x.uuid === m![1] || x.name === m![1]);
      if (!db) throw new ApiError(404, 7404, "The database could not be found");
      return { uuid: db.uuid, name: db.name, created_at: db.created_at, version: "production", num_tables: 0, file_size: 0 };
    }
    if ((m = p.match(/^\/d1\/database\/([^/]+)\/query$/)) && method === "POST") {
      const db = d1.find((x) => x.uuid === m![1]);
      if (!db) throw new ApiError(404, 7404, "The database could not be found");
      const { sql } = (await req.json()) as { sql: string };
      db.queries.push(sql);
      return d1Query(db, sql);
    }

    // R2 buckets
    if ((m = p.match(/^\/r2\/buckets\/([^/]+)$/)) && method === "GET") {
      const bucket = r2.find((b) => b.name === m![1]);
      if (!bucket) throw new ApiError(404, 10006, "The specified bucket does not exist.");
      return bucket;
    }
    if (p === "/r2/buckets" && method === "GET") return { buckets: r2 };
    if (p === "/r2/buckets" && method === "POST") {
      const { name } = (await req.json()) as { name: string };
      if (r2.some((b) => b.name === name)) throw new ApiError(409, 10004, "The bucket you tried to create already exists");
      const bucket = { name, creation_date: now() };
      r2.push(bucket);
      return bucket;
    }
    throw new ApiError(404, 7003, `No route for that URI (stand-in: ${method} ${p})`);
  }

  /**
   * D1's query endpoint, as far as `wrangler d1 migrations` uses it: the bookkeeping table,
   * the list of applied names, and each migration file run with the INSERT that records it.
   */
  function d1Query(db: D1, sql: string) {
    const result = (results: unknown[] = []) => [{ results, success: true, meta: { duration: 1, changes: 0, rows_read: 0 } }];
    if (/CREATE TABLE IF NOT EXISTS d1_migrations/i.test(sql)) db.migrationsTable = true;
    if (/SELECT\s+(\*|name)\s+FROM\s+d1_migrations/i.test(sql)) {
      if (!db.migrationsTable) throw new ApiError(400, 7500, "no such table: d1_migrations: SQLITE_ERROR");
      return result(db.migrations.map((name, i) => ({ id: i + 1, name, applied_at: now() })));
    }
    const applied = sql.match(/INSERT INTO d1_migrations \(name\)\s+values \('([^']+)'\)/i);
    if (applied) db.migrations.push(applied[1]!);
    return result();
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? "/", "http://stand-in");
      const path = url.pathname.replace(/^\/client\/v4/, "");
      calls.push({ method: req.method ?? "GET", path: path + url.search, body: body.toString("utf8") });
      let status = 200;
      let payload: unknown;
      try {
        if (req.headers.authorization !== `Bearer ${token}`) throw new ApiError(401, 10000, "Authentication error");
        const request = new Request(url, {
          method: req.method,
          headers: req.headers as Record<string, string>,
          body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
        });
        payload = ok(await route(req.method ?? "GET", path, url, request));
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, 10013, String(err));
        status = e.status;
        payload = fail(e.code, e.message);
      }
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
  return {
    baseUrl,
    env: { CLOUDFLARE_API_BASE_URL: baseUrl, CLOUDFLARE_API_TOKEN: token, CLOUDFLARE_ACCOUNT_ID: accountId },
    calls,
    accountId,
    scripts,
    kv,
    d1,
    r2,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
