import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
// @ts-expect-error plain ESM script without types
import { main as checkMain } from "../../scripts/check.mjs";

/**
 * What the deploy tests share: running `npm run check` and wrangler on the committed
 * wrangler.toml or on a copy filled in as docs/deploy.md says.
 */
export const root = new URL("../..", import.meta.url).pathname;

export interface Outcome {
  code: number;
  text: string;
}

/**
 * Runs a command to its end (never with the caller's Cloudflare credentials), `input` on
 * its stdin; its exit status and all it printed.
 */
export function run(command: string, args: string[], env: Record<string, string | undefined> = {}, input = ""): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = execFile(
      command,
      args,
      { cwd: root, env: { ...process.env, CLOUDFLARE_API_TOKEN: undefined, WRANGLER_SEND_METRICS: "false", ...env }, timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, text: stdout + stderr }),
    );
    child.stdin!.end(input);
  });
}

let files = 0;
/** Writes `text` as a wrangler.toml in `dir`; its path. */
export function writeConfig(dir: string, text: string): string {
  const path = join(dir, `wrangler-${++files}.toml`);
  writeFileSync(path, text);
  return path;
}

/**
 * `npm run check -- <args>` in this process (scripts/check.mjs's `main`, with this process's
 * environment): what the command prints and its exit status, without a Node start and a
 * wrangler load (about 1.5 s of CPU) per call. `input` is what `--put-secret` reads from stdin.
 */
export async function checkHere(args: string[], input = ""): Promise<Outcome> {
  const { ok, text } = (await checkMain(args, { readInput: async () => input })) as { ok: boolean; text: string };
  return { code: ok ? 0 : 1, text };
}

/** The committed wrangler.toml, its paths made absolute for a copy that lives elsewhere. */
export function committed(): string {
  return readFileSync(join(root, "wrangler.toml"), "utf8")
    .replace('main = "src/index.ts"', `main = "${join(root, "src", "index.ts")}"`)
    .replace('directory = "./.docs-assets"', `directory = "${join(root, ".docs-assets")}"`);
}

/**
 * The committed wrangler.toml as a platform engineer fills it in (docs/deploy.md, "Fill
 * in the vars"): the origin URLs; no resource ids (the first deploy creates the resources).
 */
export function filledIn(): string {
  return committed()
    .replace(/^ORIGIN_ZAKGT = "".*$/gm, 'ORIGIN_ZAKGT = "https://origin.zakgt.example"')
    .replace(/^ORIGIN_ZSKY = "".*$/gm, 'ORIGIN_ZSKY = "https://origin.zsky.example"')
    .replace(/^ORIGIN_ZAPPWAY = "".*$/gm, 'ORIGIN_ZAPPWAY = "https://origin.zappway.example"')
    .replace(/^ZAKGT_JWKS_URL = "".*$/gm, 'ZAKGT_JWKS_URL = "https://api.zakgt.net/.well-known/jwks.json"');
}
