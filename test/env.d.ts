// Types the bindings that `cloudflare:test` hands to tests: the Worker's own, plus the
// D1 migrations vitest.config.ts reads for test/apply-migrations.ts.
declare namespace Cloudflare {
  interface Env extends import("../src/env").Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
