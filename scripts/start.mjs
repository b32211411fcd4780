#!/usr/bin/env node
// `npm start`: the gateway on local KV/D1/R2/Durable Objects (wrangler dev, no account,
// no network) in front of the three origin simulators, then a "try it" block of curl
// commands. PORT (default 8787) and ADMIN_TOKEN are read from the environment;
// ZGATE_SIM_PORTS (default 8701,8702,8703) moves the simulators; ZGATE_STATE_DIR
// (default .wrangler/state) is where local KV/D1/R2/DO data persists between runs;
// ZGATE_SIM_ZSKY_COMPLETE_AFTER_MS (default 1500) is how long a simulated ZSky job runs.
// The state directory also keeps the dev secrets (admin token, origin and result-link
// signing secrets) and the ZSky simulator's jobs, so a restart keeps tokens, links and jobs.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const stateDir = process.env.ZGATE_STATE_DIR ?? join(root, ".wrangler", "state");
const port = Number(process.env.PORT ?? 8787);
const host = "127.0.0.1";
// A port not given is 0: any free one.
const [zakgtPort = 0, zskyPort = 0, zappwayPort = 0] = (process.env.ZGATE_SIM_PORTS ?? "8701,8702,8703").split(",").map(Number);
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
  /** @type {Record<"ADMIN_TOKEN" | "ORIGIN_SIGNING_SECRET" | "RESULT_SIGNING_SECRET", [RegExp, () => string]>} */
  const shapes = {
    ADMIN_TOKEN: [/^dev_admin_[0-9a-f]{32}$/, () => `dev_admin_${randomBytes(16).toString("hex")}`],
    ORIGIN_SIGNING_SECRET: [/^[0-9a-f]{64}$/, () => randomBytes(32).toString("hex")],
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

// The simulators are TypeScript that shares the gateway's signing module: bundle them for Node.
await build({
  entryPoints: [join(root, "origins", "serve.ts")],
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: join(work, "origins.mjs"),
  logLevel: "error",
});
const { startSimulators } = /** @type {typeof import("../origins/serve")} */ (await import(pathToFileURL(join(work, "origins.mjs")).href));

const signingSecret = secrets.ORIGIN_SIGNING_SECRET;
const adminToken = process.env.ADMIN_TOKEN || secrets.ADMIN_TOKEN;
const sims = await startSimulators({
  signingSecrets: [signingSecret],
  issuer: "https://api.zakgt.net",
  audience: "zakgt-api",
  host,
  ports: { zakgt: zakgtPort, zsky: zskyPort, zappway: zappwayPort },
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
    `ORIGIN_ZAKGT=${sims.origins.zakgt}`,
    `ORIGIN_ZSKY=${sims.origins.zsky}`,
    `ORIGIN_ZAPPWAY=${sims.origins.zappway}`,
    `ZAKGT_JWKS_URL=${sims.jwksUrl}`,
    `ORIGIN_SIGNING_SECRET=${signingSecret}`,
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

if (existsSync(join(root, "migrations")) && readdirSync(join(root, "migrations")).some((f) => f.endsWith(".sql"))) {
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
}

const dev = run([
  "dev",
  "--ip",
  host,
  "--port",
  String(port),
  "--env-file",
  envFile,
  "--persist-to",
  stateDir,
  "--show-interactive-dev-session=false",
]);
let devLog = "";
dev.stdout.on("data", (d) => (devLog += d));
dev.stderr.on("data", (d) => (devLog += d));

/** @param {number} code */
async function shutdown(code) {
  dev.removeAllListeners("exit");
  dev.kill("SIGTERM");
  await sims.close();
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
}
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));
dev.on("exit", (code) => {
  console.error(`wrangler dev exited (${code}).\n${devLog}`);
  shutdown(code ?? 1);
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
// From here on, wrangler's own request log is passed through.
dev.stdout.pipe(process.stdout);
dev.stderr.pipe(process.stderr);

const json = "-H 'Content-Type: application/json'";
console.log(`
zgate listening on ${base}
  origin simulators: ZakGT ${sims.origins.zakgt}  ZSky ${sims.origins.zsky}  ZappWay ${sims.origins.zappway}
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
