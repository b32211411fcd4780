import type { Hono } from "hono";
import { adminCall, query, type ConsoleEnv } from "../admin-client";
import type { AuditEntry, AuditPage } from "../api-types";
import { NextPage, Table, Time } from "../layout";
import { render } from "../render";

/** What every leak intake writes: secret-scanning partners, the public report and an admin's revoke-leaked alike. */
const LEAK_ACTION = "key.revoke_leaked";

const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : null);

function LeakTable(props: { entries: AuditEntry[] }) {
  if (props.entries.length === 0) return <p class="muted">No leaked key reported yet.</p>;
  return (
    <Table head={["Time", "Reported by", "Key", "Why", "Product / account", "Found at", "Reason"]}>
      {props.entries.map((e) => {
        const source = text(e.detail?.source_url);
        return (
          <tr>
            <td>
              <Time iso={e.at} />
            </td>
            <td class="mono">{e.actor}</td>
            <td class="mono">{e.target ? <a href={`/admin/keys/${encodeURIComponent(e.target)}`}>{e.target}</a> : "—"}</td>
            <td>{text(e.detail?.why) ?? "—"}</td>
            <td>{`${e.product ?? "—"} / ${e.account ?? "—"}`}</td>
            {/* A partner's URL is shown as text, never a link: it points at whatever published the key. */}
            <td class="mono">{source ?? "—"}</td>
            <td>{text(e.detail?.reason) ?? "—"}</td>
          </tr>
        );
      })}
    </Table>
  );
}

/**
 * Leak-intake events: every key revoked as leaked, from the audit log (one source of
 * truth), whoever reported it (`secret-scanning:github`, `secret-scanning:gitlab`,
 * `report:public`, `admin:…`), newest first.
 */
export function registerLeaks(app: Hono<ConsoleEnv>) {
  app.get("/leaks", async (c) => {
    const cursor = c.req.query("cursor") || undefined;
    const result = await adminCall<AuditPage>(c, "GET", `/audit${query({ action: LEAK_ACTION, limit: "50", cursor })}`);
    return render(c, "Leak intake", () => (
      <>
        <h1>Leak intake</h1>
        <p class="muted">
          Keys revoked as leaked: by a secret-scanning partner, a public report or an admin. Reports of tokens that are not zgate keys
          change nothing and are not listed.
        </p>
        <LeakTable entries={result.entries} />
        <NextPage path="/admin/leaks" fields={{}} cursor={result.next_cursor} />
      </>
    ));
  });
}
