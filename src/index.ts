import { createApp } from "./app";
import type { Env } from "./env";

export { AccountGuard } from "./limits/account-guard";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
