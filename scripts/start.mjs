#!/usr/bin/env node
// `npm start`: the gateway on local KV/D1/R2/Durable Objects (wrangler dev, no account,
// no network) in front of an origin simulator for each registered product, then a "try it"
// block of curl commands. PORT (default 8787) and ADMIN_TOKEN are read from the environment;
// ZGATE_SIM_PORTS (default 8701,8702,8703: one per product, in the registry's order) moves
// the simulators; ZGATE_STATE_DIR
// (default .wrangler/state) is where local KV/D1/R2/DO data persists between runs;
// ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS (default 1500) is how long a simulated ZSky job runs.
// The state directory also keeps the dev secrets (admin token, origin-assertion key and
// result-link signing secret) and the ZSky simulator's jobs, so a restart keeps tokens, links and jobs,
// and the names of the D1 migrations applied to it (a restart applies only new ones).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { importTs } from "./import-ts.mjs";
import { watchRuntime } from "./runtime-watch.mjs";

const root = new URL("..", import.meta.url).pathname;
const stateDir = process.env.ZGATE_STATE_DIR ?? join(root, ".wrangler", "state");
const port = Number(process.env.PORT ?? 8787);
const host = "127.0.0.1";
const registered = /** @type {typeof import("../src/products/index")} */ (await importTs("src/products/index.ts")).products();
const assertionKeys = /** @type {typeof import("../src/forward/assertion-keys")} */ (await importTs("src/forward/assertion-keys.ts"));
const simPorts = process.env.ZGATE_SIM_PORTS?.split(",").map(Number) ?? registered.map((_, i) => 8701 + i);
const wranglerBin = join(root, "node_modules", ".bin", "wrangler");
const quiet = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: process.env.CI ?? "" };

/**
 * The dev secrets, made once per state directory and kept there (mode 0600, beside the
 * local data they protect), so a restart keeps the admin token, the origins' trust and
 * every result link signed before. A value that is there but malformed stops the start:
 * silently replacing it would break what it signed.
 * @param {string} file
 */
function devSecrets(file) {
  /** @type {Record<"ADMIN_TOKEN" | "ORIGIN_ASSERTION_KEY" | "RESULT_SIGNING_SECRET", [RegExp, () => string]>} */
  const shapes = {
    ADMIN_TOKEN: [/^dev_admin_[0-9a-f]{32}$/, () => `dev_admin_${randomBytes(16).toString("hex")}`],
    ORIGIN_ASSERTION_KEY: [/^[A-Za-z0-9_-]{43}$/, assertionKeys.newAssertionKey],
    RESULT_SIGNING_SECRET: [/^[0-9a-f]{64}$/, () => randomBytes(32).toString("hex")],
  };
  /** @type {Record<string, string>} */
  const kept = existsSync(file)
    ? Object.fromEntries([...readFileSync(file, "utf8").matchAll(/^([A-Z_]+)=(.*)$/gm)].map((m) => [m[1], String(m[2]).trim()]))
    : {};
  /** @type {Record<string, string>} */
  const secrets = {};
  for (const [name, [shape, make]] of Object.entries(shapes)) {
    if (kept[name] !== undefined && !shape.test(kept[name])) {
      console.error(`${file}: ${name} is not what npm start writes (${shape}); fix it, or delete the file for new dev secrets.`);
      process.exit(1);
    }
    secrets[name] = kept[name] ?? make();
  }
  if (Object.keys(shapes).some((name) => kept[name] === undefined)) {
    mkdirSync(stateDir, { recursive: true });
    const lines = Object.entries(secrets).map(([name, value]) => `${name}=${value}`);
    writeFileSync(file, `# npm start's development secrets, kept across restarts; delete this file for new ones.\n${lines.join("\n")}\n`, {
      mode: 0o600,
    });
  }
  return /** @type {Record<keyof typeof shapes, string>} */ (secrets);
}
const secretsFile = join(stateDir, "zgate-dev-secrets.env");
const secrets = devSecrets(secretsFile);

// Per-run scratch (bundled simulators, the env file for wrangler), removed on exit.
const work = mkdtempSync(join(tmpdir(), "zgate-start-"));

// The simulators are TypeScript (with the example origin verifier): bundle them for Node.
await build({
  entryPoints: [join(root, "origins", "serve.ts")],
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: join(work, "origins.mjs"),
  logLevel: "error",
});
const { startSimulators } = /** @type {typeof import("../origins/serve")} */ (await import(pathToFileURL(join(work, "origins.mjs")).href));

// The gateway's one dev key, kid `dev`; the simulators trust its public half, as origins trust /.well-known/jwks.json.
const gatewayKeys = { dev: secrets.ORIGIN_ASSERTION_KEY };
const adminToken = process.env.ADMIN_TOKEN || secrets.ADMIN_TOKEN;
const sims = await startSimulators({
  products: registered,
  assertionKeys: await assertionKeys.publishedKeys(gatewayKeys),
  issuer: "https://api.zakgt.net",
  audience: "zakgt-api",
  host,
  ports: Object.fromEntries(registered.map((p, i) => [p.id, simPorts[i]])),
  zskyCompleteAfterMs: process.env.ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS ? Number(process.env.ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS) : undefined,
  zskyJobsFile: join(stateDir, "zsky-simulator-jobs.json"),
}).catch((err) => {
  console.error(
    err.code === "EADDRINUSE" ? `Could not start the origin simulators (EADDRINUSE); set ZGATE_SIM_PORTS to free ports.` : err.message,
  );
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
});

// Secrets go through an env file, which wrangler treats as secrets and never prints.
const envFile = join(work, "dev.env");
writeFileSync(
  envFile,
  [
    ...Object.entries(sims.originSettings).map(([setting, url]) => `${setting}=${url}`),
    `ZAKGT_JWKS_URL=${sims.jwksUrl}`,
    `ORIGIN_ASSERTION_KEYS='${JSON.stringify(gatewayKeys)}'`,
    `RESULT_SIGNING_KEYS='${JSON.stringify({ dev: secrets.RESULT_SIGNING_SECRET })}'`,
    "RESULT_SIGNING_KEY_ID=dev",
    `ADMIN_TOKEN=${adminToken}`,
    "",
  ].join("\n"),
  { mode: 0o600 },
);

/**
 * `wrangler <args>` in the repository, its output piped.
 * @param {string[]} args
 */
function run(args) {
  return spawn(wranglerBin, args, { cwd: root, env: quiet, stdio: ["ignore", "pipe", "pipe"] });
}

/**
 * The migrations this state directory's D1 has had, by name, as wrangler tracks them: a
 * start that finds no new one (and the database still there) does not run `wrangler d1
 * migrations apply`, which would only say "No migrations to apply!" after some 3 s of CPU.
 */
const migrationNames = existsSync(join(root, "migrations"))
  ? readdirSync(join(root, "migrations"))
      .filter((f) => f.endsWith(".sql"))
      .sort()
  : [];
const appliedFile = join(stateDir, "zgate-migrations-applied.txt");
const applied = migrationNames.map((name) => `${name}\n`).join("");
const upToDate = existsSync(join(stateDir, "v3", "d1")) && existsSync(appliedFile) && readFileSync(appliedFile, "utf8") === applied;
if (migrationNames.length > 0 && !upToDate) {
  const migrate = run(["d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir]);
  let output = "";
  migrate.stdout.on("data", (d) => (output += d));
  migrate.stderr.on("data", (d) => (output += d));
  const code = await new Promise((r) => migrate.on("exit", r));
  if (code !== 0) {
    console.error(`Applying D1 migrations failed:\n${output}`);
    await sims.close();
    rmSync(work, { recursive: true, force: true });
    process.exit(1);
  }
  writeFileSync(appliedFile, applied);
}

const dev = run([
  "dev",
  "--ip",
  host,
  "--port",
  String(port),
  // wrangler's default debugger port (9229) is one per machine: two npm starts side by side
  // (the node tests) need their own.
  ...(process.env.ZGATE_INSPECTOR_PORT ? ["--inspector-port", process.env.ZGATE_INSPECTOR_PORT] : []),
  "--env-file",
  envFile,
  "--persist-to",
  stateDir,
  "--show-interactive-dev-session=false",
]);
// wrangler's output is kept until the gateway answers (to show why it did not), then passed through.
let devLog = "";
const keepLog = (/** @type {Buffer | string} */ d) => (devLog += d);
dev.stdout.on("data", keepLog);
dev.stderr.on("data", keepLog);
/** @type {Awaited<ReturnType<typeof watchRuntime>> | undefined} */
let runtime;

let stopping = false;
/** @param {number} code */
async function shutdown(code) {
  if (stopping) return;
  stopping = true;
  runtime?.stop();
  dev.removeAllListeners("exit");
  dev.kill("SIGTERM");
  // wrangler stops its runtime itself, unless wrangler is what died: then its workerd is
  // left holding the port. It blocks SIGTERM; wrangler too ends it with SIGKILL.
  for (const pid of runtime?.lastSeen() ?? []) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await sims.close();
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
}
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));
// The origin simulators run in this process: whatever stops it stops the runtime too, rather than leave it holding the port.
process.on("uncaughtException", (err) => {
  console.error(`npm start failed (the origin simulators run in its process): ${err.stack ?? err}\nStopping wrangler dev.`);
  shutdown(1);
});
dev.on("exit", (code, signal) => {
  console.error(
    `wrangler dev exited (${signal ?? `code ${code}`}), so zgate no longer answers: stopping the origin simulators.${runtime ? "" : `\n${devLog}`}`,
  );
  shutdown(code || 1);
});

const base = `http://${host}:${port}`;
for (let i = 0; ; i++) {
  try {
    const response = await fetch(`${base}/zsky/v1/usage`);
    if (response.status === 401) break;
  } catch {}
  if (i > 240) {
    console.error(`zgate did not come up on ${base}:\n${devLog}`);
    await shutdown(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}
// From here on, wrangler's own request log is passed through, and its runtime watched.
dev.stdout.off("data", keepLog);
dev.stderr.off("data", keepLog);
dev.stdout.pipe(process.stdout);
dev.stderr.pipe(process.stderr);
runtime = await watchRuntime(/** @type {number} a spawned process that answered has a pid */ (dev.pid), (why) => {
  console.error(
    `\nnpm start: ${why}; zgate no longer answers on ${base}. Stopping wrangler dev and the origin simulators: run npm start again.`,
  );
  shutdown(1);
});

const json = "-H 'Content-Type: application/json'";
console.log(`
zgate listening on ${base}
  API reference:     ${base}/docs
  security console:  ${base}/admin/ (sign in with the admin token)
  health check:      ${base}/healthz
  origin simulators: ${registered.map((p) => `${p.name} ${sims.origins[p.id]}`).join("  ")}
  admin token: ${process.env.ADMIN_TOKEN ? "(from ADMIN_TOKEN)" : adminToken}
  state: ${stateDir} (local data, dev secrets in ${secretsFile}, simulated jobs: all kept across restarts)

Try it:
  # 1. Log in to the ZakGT simulator through the gateway and keep the access token
  TOKEN=$(curl -s -X POST ${base}/zakgt/api/v1/auth/login ${json} -d '{"email":"demo@zakgt.test","password":"demo-password"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
  # 2. Call ZakGT with it
  curl -s ${base}/zakgt/api/v1/users/me -H "Authorization: Bearer $TOKEN"
  # 3. Without it: 401 in ZakGT's envelope
  curl -s -i ${base}/zakgt/api/v1/users/me
  # 4. ZSky without a key: 401 in ZSky's envelope
  curl -s -i ${base}/zsky/v1/usage

Stop with Ctrl-C.
`);
