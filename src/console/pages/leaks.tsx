import type { Hono } from "hono";
import { adminCall, query, type ConsoleEnv } from "../admin-client";
import type { AuditPage } from "../api-types";
import { NextPage, Notice } from "../layout";
import { render } from "../render";
import { AuditTable } from "./audit";

/** Audit actions of leak intake: secret-scanning partners, public reports and revoke-leaked calls. */
const LEAK_ACTIONS = ["key.revoke_leaked"] as const;

/**
 * Leak-intake events, from the audit log (one source of truth): every revocation of a
 * leaked key, whoever reported it, newest first.
 */
export function registerLeaks(app: Hono<ConsoleEnv>) {
  app.get("/leaks", async (c) => {
    const cursor = c.req.query("cursor") || undefined;
    const result = await adminCall<AuditPage>(c, "GET", `/audit${query({ action: LEAK_ACTIONS[0], limit: "50", cursor })}`);
    return render(c, "Leak intake", () => (
      <>
        <h1>Leak intake</h1>
        <Notice kind="warn">
          Keys revoked as leaked (revoke-leaked calls). Secret-scanning partner reports appear here once this deployment's admin API records
          them.
        </Notice>
        <AuditTable entries={result.entries} />
        <NextPage path="/admin/leaks" fields={{}} cursor={result.next_cursor} />
      </>
    ));
  });
}
