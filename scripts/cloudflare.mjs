// What a zgate environment looks like on Cloudflare, for `npm run check`: the deployed
// Worker's bindings and secrets, the resources wrangler created for it, and which D1
// migrations its database has. It asks the Cloudflare API itself (read-only) with the
// credentials wrangler uses: CLOUDFLARE_API_TOKEN, or the login of `wrangler login`
// (`wrangler auth token`), and CLOUDFLARE_API_BASE_URL when set (a stand-in API in tests).
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { root } from "./import-ts.mjs";

const WORKER_NOT_FOUND = 10007;

/** @typedef {import("wrangler").Unstable_Config} Config */
/** @typedef {{ type: string, name: string, namespace_id?: string, id?: string }} WorkerBinding One of a deployed Worker's bindings, as the API lists them. */
/** @typedef {Error & { code?: number }} ApiError An error the API answered, with its code. */
/** @typedef {ReturnType<typeof client>} Api */

/**
 * `wrangler <args>` to its end; its stdout, or an Error naming the last lines it printed.
 * @param {string[]} args
 * @param {string} [input]
 * @returns {Promise<string>}
 */
export async function wrangler(args, input) {
  const run = promisify(execFile)(join(root, "node_modules", ".bin", "wrangler"), args, {
    cwd: root,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    timeout: 120_000,
  });
  run.child.stdin?.end(input ?? "");
  try {
    return (await run).stdout;
  } catch (caught) {
    const err = /** @type {import("node:child_process").ExecFileException & { stdout?: string, stderr?: string }} */ (caught);
    const said = String(err.stderr || err.stdout || err.message)
      .trim()
      .split("\n")
      .filter((line) => line.trim() && !line.includes("Logs were written"))
      .slice(-3)
      .join(" ");
    throw new Error(`\`wrangler ${args.slice(0, 2).join(" ")}\` failed: ${said}`);
  }
}

/**
 * The API token and account to ask with, or why there are none.
 * @param {Config} config
 * @returns {Promise<{ token: string, account: string }>}
 */
async function credentials(config) {
  const token = process.env.CLOUDFLARE_API_TOKEN || JSON.parse(await wrangler(["auth", "token", "--json"])).token;
  let account = process.env.CLOUDFLARE_ACCOUNT_ID || config.account_id;
  if (!account) {
    /** @type {{ accounts?: { id: string }[] }} */
    const { accounts = [] } = JSON.parse(await wrangler(["whoami", "--json"]));
    const [only] = accounts;
    if (accounts.length !== 1 || !only)
      throw new Error(`the login reaches ${accounts.length} accounts: set CLOUDFLARE_ACCOUNT_ID (or account_id in wrangler.toml)`);
    account = only.id;
  }
  return { token, account };
}

/**
 * A client for one account's part of the API: `get(path)` and `post(path, body)`, each the
 * result (its shape the endpoint's: the caller names it) or an ApiError.
 * @param {{ token: string, account: string }} credentials
 */
function client({ token, account }) {
  const base = (process.env.CLOUDFLARE_API_BASE_URL || "https://api.cloudflare.com/client/v4").replace(/\/$/, "");
  /** @type {(path: string, init?: RequestInit) => Promise<unknown>} */
  const call = async (path, init = {}) => {
    const res = await fetch(`${base}/accounts/${account}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      signal: AbortSignal.timeout(30_000),
    });
    /** @type {{ success?: boolean, result?: unknown, errors?: { code: number, message: string }[] }} */
    const body = await res.json().catch(() => ({}));
    if (body.success) return body.result;
    const error = body.errors?.[0] ?? { code: res.status, message: res.statusText };
    throw Object.assign(new Error(`${error.message} [code: ${error.code}]`), { code: error.code });
  };
  return {
    get: (/** @type {string} */ path) => call(path),
    post: (/** @type {string} */ path, /** @type {unknown} */ body) => call(path, { method: "POST", body: JSON.stringify(body) }),
  };
}

/**
 * Every item of a paged list (their shape the endpoint's: the caller names it).
 * @param {Api} api
 * @param {string} path
 */
async function all(api, path) {
  /** @type {unknown[]} */
  const items = [];
  for (let page = 1; ; page++) {
    const batch = /** @type {unknown[]} */ (await api.get(`${path}?per_page=100&page=${page}`));
    items.push(...batch);
    if (batch.length < 100) return items;
  }
}

/**
 * The name wrangler gives a KV namespace it creates for a binding with no id (its
 * provisioning: the Worker's name, then the binding's in lower case with dashes).
 * @type {(worker: string, binding: string) => string}
 */
export const provisionedKvTitle = (worker, binding) => `${worker}-${binding.toLowerCase().replaceAll("_", "-")}`;

/** The migration files in migrations/, in the order wrangler applies them. */
export const migrationFiles = () =>
  readdirSync(join(root, "migrations"))
    .filter((f) => f.endsWith(".sql"))
    .sort();

/**
 * The environment as Cloudflare holds it: `worker` (its bindings, or null before the
 * first deploy), `kv` and `d1` (`bound`: the id the Worker is bound to; `id`: that, or
 * when wrangler.toml has none, the one found by the name wrangler creates it under),
 * `r2` (whether the bucket exists), `secrets` (names) and `migrations` (names applied,
 * or null when there is no database to ask yet).
 * @param {Config} config
 * @param {{ kvBinding: string, d1Binding: string, r2Binding: string }} names
 */
export async function remoteState(config, { kvBinding, d1Binding, r2Binding }) {
  const api = client(await credentials(config));
  /** @type {WorkerBinding[] | null} */
  let bindings = null;
  try {
    bindings = /** @type {{ bindings: WorkerBinding[] }} */ (await api.get(`/workers/scripts/${config.name}/settings`)).bindings;
  } catch (err) {
    if (/** @type {ApiError} */ (err).code !== WORKER_NOT_FOUND) throw err;
  }
  /** @type {(type: string, name: string) => WorkerBinding | undefined} */
  const bound = (type, name) => bindings?.find((b) => b.type === type && b.name === name);
  const kvConfig = config.kv_namespaces.find((b) => b.binding === kvBinding);
  const d1Config = config.d1_databases.find((b) => b.binding === d1Binding);
  const r2Config = config.r2_buckets.find((b) => b.binding === r2Binding);

  // Each resource as the deployed Worker is bound to it, or else as wrangler named it on creating it.
  const title = provisionedKvTitle(String(config.name), kvBinding);
  const kvBound = bound("kv_namespace", kvBinding)?.namespace_id;
  const namespaces = async () => /** @type {{ id: string, title: string }[]} */ (await all(api, "/storage/kv/namespaces"));
  const databases = async () => /** @type {{ uuid: string, name: string }[]} */ (await all(api, "/d1/database"));
  const kvFound = kvBound ?? (kvConfig?.id ? undefined : (await namespaces()).find((n) => n.title === title)?.id);
  const d1Bound = bound("d1", d1Binding)?.id;
  const d1Found =
    d1Bound ??
    (d1Config?.database_id || !d1Config?.database_name
      ? undefined
      : (await databases()).find((db) => db.name === d1Config.database_name)?.uuid);
  const d1Id = d1Config?.database_id ?? d1Found;
  let r2 = false;
  if (r2Config?.bucket_name) {
    try {
      await api.get(`/r2/buckets/${r2Config.bucket_name}`);
      r2 = true;
    } catch (err) {
      if (/** @type {ApiError} */ (err).code !== 10006) throw err;
    }
  }
  /** @type {string[] | null} */
  let migrations = null;
  if (d1Id) {
    const table = d1Config?.migrations_table ?? "d1_migrations";
    try {
      const query = { sql: `SELECT name FROM ${table} ORDER BY id` };
      const [{ results }] = /** @type {[{ results: { name: string }[] }]} */ (await api.post(`/d1/database/${d1Id}/query`, query));
      migrations = results.map((r) => r.name);
    } catch (err) {
      if (!/no such table/.test(/** @type {ApiError} */ (err).message)) throw err;
      migrations = [];
    }
  }
  return {
    worker: bindings && { bindings },
    kv: { id: kvFound, bound: kvBound, title },
    d1: { id: d1Found, bound: d1Bound },
    r2,
    secrets: (bindings ?? []).filter((b) => b.type === "secret_text").map((b) => b.name),
    migrations,
  };
}
