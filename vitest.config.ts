import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Two projects:
// - `workers`: the suite proper, inside workerd against the real Worker (src/index.ts)
//   with local KV, D1, R2 and Durable Objects from wrangler.toml. The origin simulators
//   run in Node (test/node/global-setup.ts) and the Worker reaches them over loopback.
// - `node`: what only Node can check: `npm start` end to end, `wrangler deploy --dry-run`.
export default defineConfig({
  test: {
    testTimeout: 20_000,
    // The gateway's access log is asserted where it matters (test/logging.test.ts);
    // elsewhere its lines would bury the test output.
    onConsoleLog: (log) => !log.startsWith('{"msg":"request"'),
    projects: [
      {
        plugins: [
          cloudflareTest(async ({ inject }) => {
            const sims = inject("simulators");
            return {
              main: "./src/index.ts",
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  ORIGIN_ZAKGT: sims.origins.zakgt,
                  ORIGIN_ZSKY: sims.origins.zsky,
                  ORIGIN_ZAPPWAY: sims.origins.zappway,
                  ZAKGT_JWKS_URL: sims.jwksUrl,
                  ORIGIN_SIGNING_SECRET: sims.signingSecret,
                  ADMIN_TOKEN: "test-admin-token-0123456789abcdef",
                  TEST_MIGRATIONS: await readD1Migrations("./migrations"),
                },
              },
            };
          }),
        ],
        test: {
          name: "workers",
          testTimeout: 30_000,
          include: ["test/**/*.test.ts"],
          exclude: ["test/node/**"],
          globalSetup: ["./test/node/global-setup.ts"],
          setupFiles: ["./test/apply-migrations.ts"],
        },
      },
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
