import { route as createKey } from "./create-key";
import { route as exportUsage } from "./export-usage";
import { route as getKey } from "./get-key";
import { route as keyUsage } from "./key-usage";
import { route as liftSuspension } from "./lift-suspension";
import { route as listAudit } from "./list-audit";
import { route as listKeys } from "./list-keys";
import { route as lookupKey } from "./lookup-key";
import { route as revokeKey } from "./revoke-key";
import { route as revokeLeaked } from "./revoke-leaked";
import { route as revokeConsoleSessions } from "./revoke-console-sessions";
import { route as replaceKey } from "./replace-key";
import { route as revokeSessions } from "./revoke-sessions";
import { route as rollKey } from "./roll-key";
import { route as searchCalls } from "./search-calls";
import { route as setAccountPlan } from "./set-account-plan";
import { route as setOverage } from "./set-overage";
import { route as updateKeyLimits } from "./update-key-limits";

/** Every admin route definition: the admin app serves them and the OpenAPI document describes them. */
export const ADMIN_ROUTES = [
  createKey,
  listKeys,
  lookupKey,
  getKey,
  keyUsage,
  exportUsage,
  searchCalls,
  updateKeyLimits,
  revokeKey,
  rollKey,
  replaceKey,
  revokeLeaked,
  liftSuspension,
  revokeSessions,
  revokeConsoleSessions,
  setOverage,
  setAccountPlan,
  listAudit,
];
