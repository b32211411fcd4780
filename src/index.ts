import { createApp } from "./app";
import type { Env } from "./env";
import { scheduled } from "./scheduled";

export { AccountGuard } from "./guard/account-guard";

const app = createApp();

export default {
  fetch: app.fetch,
  scheduled,
} satisfies ExportedHandler<Env>;
