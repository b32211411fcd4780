import { createKeyRoute } from "./create-key";
import { exportUsageRoute } from "./export-usage";
import { getKeyRoute } from "./get-key";
import { keyUsageRoute } from "./key-usage";
import { liftSuspensionRoute } from "./lift-suspension";
import { listAuditRoute } from "./list-audit";
import { listKeysRoute } from "./list-keys";
import { lookupKeyRoute } from "./lookup-key";
import { revokeKeyRoute } from "./revoke-key";
import { revokeLeakedRoute } from "./revoke-leaked";
import { revokeConsoleSessionsRoute } from "./revoke-console-sessions";
import { replaceKeyRoute } from "./replace-key";
import { revokeSessionsRoute } from "./revoke-sessions";
import { rollKeyRoute } from "./roll-key";
import { searchCallsRoute } from "./search-calls";
import { setAccountPlanRoute } from "./set-account-plan";
import { setOverageRoute } from "./set-overage";
import { updateKeyLimitsRoute } from "./update-key-limits";

/**
 * Every admin route, once: the admin app serves this list (admin/app.ts) and the OpenAPI
 * document describes it in this order (openapi/document.ts). No two routes match one
 * request, so the order is the document's alone.
 */
export const ADMIN_ROUTES = [
  createKeyRoute,
  listKeysRoute,
  lookupKeyRoute,
  getKeyRoute,
  keyUsageRoute,
  exportUsageRoute,
  searchCallsRoute,
  updateKeyLimitsRoute,
  revokeKeyRoute,
  rollKeyRoute,
  replaceKeyRoute,
  revokeLeakedRoute,
  liftSuspensionRoute,
  revokeSessionsRoute,
  revokeConsoleSessionsRoute,
  setOverageRoute,
  setAccountPlanRoute,
  listAuditRoute,
] as const;
