import { createApp } from "./app";
import type { Env } from "./env";

export { AccountGuard } from "./guard/account-guard";
export { UsageAddressIndex } from "./usage/address-index";
export { UsageLog } from "./usage/usage-log-object";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
