import type { Hono } from "hono";
import { adminListing, query, queryFields, type ConsoleEnv } from "../admin-client";
import type { AuditEntry, AuditPage } from "../api-types";
import { NextPage, Notice, Table, Time } from "../layout";
import { render } from "../render";

const FILTERS = ["target", "action", "cursor"] as const;

export function AuditTable(props: { entries: AuditEntry[] }) {
  if (props.entries.length === 0) return <p class="muted">No audit entries.</p>;
  return (
    <Table head={["Time", "Actor", "Action", "Target", "Product / account", "Detail", "Request id"]}>
      {props.entries.map((e) => (
        <tr>
          <td>
            <Time iso={e.at} />
          </td>
          <td class="mono">{e.actor}</td>
          <td class="mono">{e.action}</td>
          <td class="mono">{e.target ? <a href={`/admin/keys/${encodeURIComponent(e.target)}`}>{e.target}</a> : "—"}</td>
          <td>{`${e.product ?? "—"} / ${e.account ?? "—"}`}</td>
          <td class="mono">{e.detail ? JSON.stringify(e.detail) : ""}</td>
          <td class="mono">{e.request_id}</td>
        </tr>
      ))}
    </Table>
  );
}

/** The audit log, newest first, filtered by target and action, paged with the API's cursor. */
export function registerAudit(app: Hono<ConsoleEnv>) {
  app.get("/audit", async (c) => {
    const fields = queryFields(c, FILTERS);
    const { result, problem } = await adminListing<AuditPage>(c, `/audit${query({ ...fields, limit: "50" })}`);
    return render(
      c,
      "Audit log",
      () => (
        <>
          <h1>Audit log</h1>
          <form method="get" action="/admin/audit" class="panel filters">
            <label>
              Target (key id, user, account)
              <input name="target" value={fields.target ?? ""} size={36} />
            </label>
            <label>
              Action
              <input name="action" value={fields.action ?? ""} placeholder="key.revoke" />
            </label>
            <button type="submit">Filter</button>
          </form>
          {problem && <Notice kind="error">{problem}</Notice>}
          {result && (
            <>
              <AuditTable entries={result.entries} />
              <NextPage path="/admin/audit" fields={fields} cursor={result.next_cursor} />
            </>
          )}
        </>
      ),
      problem ? 400 : 200,
    );
  });
}
