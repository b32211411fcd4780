import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Tests run inside workerd against the real Worker (src/index.ts) with local KV, D1,
// R2 and Durable Objects from wrangler.toml. The origin simulators run in Node (see
// test/node/global-setup.ts) and the Worker reaches them over loopback HTTP.
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => {
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
          },
        },
      };
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/node/global-setup.ts"],
    testTimeout: 20_000,
    // The gateway's access log is asserted where it matters (test/logging.test.ts);
    // elsewhere its lines would bury the test output.
    onConsoleLog: (log) => !log.startsWith('{"msg":"request"'),
  },
});
