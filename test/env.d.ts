// Types the bindings that `cloudflare:test` hands to tests: the Worker's own, plus the
// D1 migrations vitest.config.ts reads for test/apply-migrations.ts.
import type { D1Migration } from "cloudflare:test";
import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      TEST_MIGRATIONS: D1Migration[];
    }
  }
}
