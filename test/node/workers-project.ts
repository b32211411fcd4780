import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import type { TestProjectInlineConfiguration } from "vitest/config";
import "./uncompressed-runner-socket.ts";

/**
 * A vitest project that runs files inside workerd against the real Worker
 * (src/index.ts) with local KV, D1, R2 and Durable Objects from wrangler.toml, the
 * origin simulators and Redis from test/node/global-setup.ts, and D1 migrated.
 * The test suite (vitest.config.ts) and the accuracy benchmark (bench/) both use it.
 */
export function workersProject(
  name: string,
  include: string[],
  extra: { testTimeout?: number; exclude?: string[]; retry?: number } = {},
): TestProjectInlineConfiguration {
  return {
    plugins: [
      // Each test file runs in a workerd of its own, which is sent every module it imports
      // with its source map inlined: for the dependencies (zod, hono, jose, ...) the maps
      // were 8 of the 12 MB a file was sent, each a copy of the module's whole source, and
      // a test's stack trace never needs them. Dropped, a file costs about 0.25 s less CPU.
      {
        name: "zgate:no-dependency-source-maps",
        configureServer(server) {
          for (const environment of Object.values(server.environments)) {
            const transformRequest = environment.transformRequest.bind(environment);
            environment.transformRequest = async (...args) => {
              const result = await transformRequest(...args);
              if (result && args[0].includes("/node_modules/")) result.map = null;
              return result;
            };
          }
        },
      },
      cloudflareTest(async ({ inject }) => {
        const sims = inject("simulators");
        return {
          main: "./src/index.ts",
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: {
            bindings: {
              ...sims.originSettings,
              ZAKGT_JWKS_URL: sims.jwksUrl,
              ORIGIN_ASSERTION_KEYS: sims.assertionKeys,
              RESULT_SIGNING_KEYS: JSON.stringify({ r1: "result-signing-secret-0123456789abcdef" }),
              RESULT_SIGNING_KEY_ID: "r1",
              // The simulators' test hooks (origins/common.ts) must reach them.
              ORIGIN_FORWARD_HEADERS: "X-Sim-*",
              ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
              // `call` waits for a request's waitUntil work, key usage flushes included, so
              // every keyed call waited out the whole flush: 1 ms, not 20, took shares.test
              // from 39 s to 14 s (800 calls one at a time). Tests of batching set a longer
              // flush themselves.
              USAGE_FLUSH_MS: "1",
              // Files share a runtime's storage (isolate: false, below), and every ZakGT test
              // that reads /users/me needs a key of the simulator's one demo user (usr_demo):
              // at the default of 20 the files that happened to share a runtime filled it
              // (settings.test: 409 making its key). key-caps.test.ts tests the default cap.
              MAX_ACTIVE_KEYS_PER_USER: "1000",
              TEST_MIGRATIONS: await readD1Migrations("./migrations"),
            },
          },
        };
      }),
    ],
    test: {
      name,
      include,
      exclude: extra.exclude,
      testTimeout: extra.testTimeout ?? 30_000,
      retry: extra.retry,
      // One workerd per vitest worker, running its files one after another, instead of one
      // per file: starting a runtime and sending it the Worker's modules cost about 1.5 s of
      // CPU a file (21 files: 66 s of CPU isolated, 34 s not). Files share that runtime's
      // storage and module state, as requests to one deployment do: each test makes its own
      // keys, accounts and addresses (test/helpers.ts), and counts only its own rows.
      isolate: false,
      globalSetup: ["./test/node/global-setup.ts"],
      setupFiles: ["./test/apply-migrations.ts"],
    },
  };
}
