import type { Context, Hono } from "hono";
import { EXPORT_MAX_CALLS } from "../../admin/routes/export-usage";
import { adminCall, query, type ConsoleEnv } from "../admin-client";
import type { ApiKey, AuditPage, UsageCall, UsagePage } from "../api-types";
import { Csrf, NextPage, Notice, Status, Table, Time } from "../layout";
import { render } from "../render";
import { UsageChart } from "../usage-chart";
import { AuditTable } from "./audit";
import { productById } from "../../products";

/** At most this many usage pages (100 calls each) are read to draw a key's 24 hours. */
const CHART_PAGES = 10;

const DONE: Record<string, string> = {
  revoked: "Revoked: no later request with this key is admitted.",
  lifted: "Suspension lifted.",
  found: "Found by the pasted key. Nothing was changed.",
};

async function last24h(c: Context<ConsoleEnv>, id: string, now: number): Promise<{ calls: UsageCall[]; truncated: boolean }> {
  const calls: UsageCall[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < CHART_PAGES; i++) {
    const page = await adminCall<UsagePage>(
      c,
      "GET",
      `/keys/${encodeURIComponent(id)}/usage${query({ since: new Date(now - 86_400_000).toISOString(), limit: "100", cursor })}`,
    );
    calls.push(...page.calls);
    if (!page.next_cursor) return { calls, truncated: false };
    cursor = page.next_cursor;
  }
  return { calls, truncated: true };
}

function Facts(props: { k: ApiKey }) {
  const k = props.k;
  return (
    <dl class="facts panel">
      <dt>Status</dt>
      <dd>
        <Status status={k.status} />
      </dd>
      <dt>Key</dt>
      <dd class="mono">{`${k.prefix}…${k.last4}`}</dd>
      <dt>Id</dt>
      <dd class="mono">{k.id}</dd>
      <dt>Product / account</dt>
      <dd>
        {k.product} / <a href={`/admin/?account=${encodeURIComponent(k.account)}`}>{k.account}</a>
      </dd>
      <dt>Label</dt>
      <dd>{k.label ?? "—"}</dd>
      <dt>Scopes / plan</dt>
      <dd>{`${k.scopes.join(", ")} / ${k.plan ?? "default"}`}</dd>
      <dt>Created</dt>
      <dd>
        <Time iso={k.created_at} />
      </dd>
      <dt>Expires</dt>
      <dd>
        <Time iso={k.expires_at} />
      </dd>
      <dt>Last admitted call</dt>
      <dd>
        <Time iso={k.last_used_at} />
      </dd>
      {k.replaces && (
        <>
          <dt>Replaces</dt>
          <dd>
            <a class="mono" href={`/admin/keys/${encodeURIComponent(k.replaces)}`}>
              {k.replaces}
            </a>
          </dd>
        </>
      )}
      {k.revoked_at && (
        <>
          <dt>Revoked</dt>
          <dd>
            <Time iso={k.revoked_at} /> by <span class="mono">{k.revoked_by ?? "?"}</span>
            {k.revoke_reason && <> — “{k.revoke_reason}”</>}
            {k.revoke_ticket && <> (ticket {k.revoke_ticket})</>}
          </dd>
        </>
      )}
    </dl>
  );
}

/**
 * What can be done to the key in its state. Revoke as leaked, whatever the state: for a key
 * already rolled away, expired or revoked it still revokes the keys rotated from it and
 * cuts its result links. A key that can no longer be rolled gets a replacement instead.
 */
function Actions(props: { k: ApiKey; csrf: string }) {
  const base = `/admin/keys/${encodeURIComponent(props.k.id)}`;
  return (
    <div class="actions panel">
      {props.k.status !== "revoked" && (
        <a class="button danger" href={`${base}/revoke`}>
          Revoke…
        </a>
      )}
      <a class="button danger" href={`${base}/revoke-leaked`}>
        Revoke as leaked…
      </a>
      {props.k.status === "active" ? (
        <a class="button secondary" href={`${base}/roll`}>
          Roll with grace period…
        </a>
      ) : (
        <a class="button" href={`${base}/replace`}>
          Create replacement key…
        </a>
      )}
      {productById(props.k.product)?.limits.generation?.suspension && (
        <form method="post" action={`${base}/lift-suspension`} class="inline">
          <Csrf token={props.csrf} />
          <button class="secondary" type="submit">
            Lift safety suspension
          </button>
        </form>
      )}
    </div>
  );
}

/** The key's calls as a file: the admin API's export (at most EXPORT_MAX_CALLS a file, newest first). */
function ExportForm(props: { k: ApiKey }) {
  const k = props.k;
  return (
    <form method="get" action={`/admin/keys/${encodeURIComponent(k.id)}/export`} class="panel filters">
      <label>
        Export calls as
        <select name="format">
          <option value="csv">CSV</option>
          <option value="ndjson">NDJSON</option>
        </select>
      </label>
      <label>
        From (UTC, optional)
        <input type="datetime-local" name="since" />
      </label>
      <label>
        To (UTC, optional)
        <input type="datetime-local" name="until" />
      </label>
      <button class="secondary" type="submit">
        Download
      </button>
      <span class="muted">
        {`The newest ${EXPORT_MAX_CALLS.toLocaleString("en")} calls a file (the download's Link header names the next). `}
        <a href={`/admin/calls${query({ product: k.product, account: k.account })}`}>Every call of this account →</a>
      </span>
    </form>
  );
}

function UsageTables(props: { k: ApiKey; usage: UsagePage; path: string }) {
  const u = props.usage;
  const newest = u.addresses[0]?.client_address;
  return (
    <>
      <h2>Client addresses</h2>
      <Table
        head={["Address", "Across accounts, 24 h", "First seen", "Last seen", "Calls", "Admitted", "Countries", "ASNs"]}
        numeric={["Calls", "Admitted"]}
      >
        {u.addresses.map((a) => (
          <tr>
            <td class={`mono${u.addresses.length > 1 && a.client_address === newest ? " new-address" : ""}`}>
              {a.client_address ?? "unknown"}
            </td>
            <td>
              {a.client_address && (
                <a href={`/admin/calls${query({ address: a.client_address })}`} title="Every key this address used in the last 24 hours">
                  keys it used →
                </a>
              )}
            </td>
            <td>
              <Time iso={a.first_seen} />
            </td>
            <td>
              <Time iso={a.last_seen} />
            </td>
            <td class="num">{a.calls}</td>
            <td class="num">{a.admitted}</td>
            <td>{a.countries.join(", ")}</td>
            <td>{a.asns.join(", ")}</td>
          </tr>
        ))}
      </Table>
      {!u.addresses_complete && <p class="muted">Summary of the newest calls only: the key has more history than one summary reads.</p>}
      <h2>Calls</h2>
      <ExportForm k={props.k} />
      <Table head={["Time", "Call", "Status", "Outcome", "Address", "Country / ASN", "User agent", "Request id"]} numeric={["Status"]}>
        {u.calls.map((call) => (
          <tr>
            <td>
              <Time iso={call.time} />
            </td>
            <td class="mono">{`${call.method} ${call.path}`}</td>
            <td class="num">{call.status}</td>
            <td>{call.outcome}</td>
            <td class="mono">{call.client_address ?? "—"}</td>
            <td>{`${call.country ?? "—"} / ${call.asn ?? "—"}`}</td>
            <td>{call.user_agent ?? "—"}</td>
            <td class="mono">{call.request_id}</td>
          </tr>
        ))}
      </Table>
      <NextPage path={props.path} fields={{}} cursor={u.next_cursor} />
    </>
  );
}

/** One key: its record, the last 24 h as a chart, its calls and addresses, its audit trail, and its actions. */
export function registerKeyDetail(app: Hono<ConsoleEnv>) {
  app.get("/keys/:id", async (c) => {
    const id = c.req.param("id");
    const cursor = c.req.query("cursor") || undefined;
    const now = Date.now();
    const key = await adminCall<ApiKey>(c, "GET", `/keys/${encodeURIComponent(id)}`);
    const [usage, chart, audit] = await Promise.all([
      adminCall<UsagePage>(c, "GET", `/keys/${encodeURIComponent(id)}/usage${query({ limit: "50", cursor })}`),
      last24h(c, id, now),
      adminCall<AuditPage>(c, "GET", `/audit${query({ target: id, limit: "20" })}`),
    ]);
    const done = DONE[c.req.query("done") ?? ""];
    const path = `/admin/keys/${encodeURIComponent(id)}`;
    return render(c, `Key ${key.prefix}…${key.last4}`, (csrf) => (
      <>
        <h1>
          Key <span class="mono">{`${key.prefix}…${key.last4}`}</span> {key.label && <span class="muted">{key.label}</span>}
        </h1>
        {done && <Notice>{done}</Notice>}
        <Facts k={key} />
        <Actions k={key} csrf={csrf} />
        <h2>Calls per minute, last 24 h (UTC)</h2>
        <UsageChart calls={chart.calls} now={now} truncated={chart.truncated} />
        <UsageTables k={key} usage={usage} path={path} />
        <h2>Audit trail</h2>
        <AuditTable entries={audit.entries} />
        <p>
          <a href={`/admin/audit?target=${encodeURIComponent(id)}`}>Whole audit trail of this key →</a>
        </p>
      </>
    ));
  });
}
