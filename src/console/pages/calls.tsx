import type { Hono } from "hono";
import { products } from "../../products";
import { adminError, adminFetch, adminListing, query, queryFields, type ConsoleEnv } from "../admin-client";
import type { CallSearchPage, FoundCall, KeySeen } from "../api-types";
import { NextPage, Notice, Table, Time } from "../layout";
import { render } from "../render";

const FILTERS = ["product", "account", "address", "since", "until", "cursor"] as const;

/** A datetime-local field (`2026-12-01T14:30`) as the admin API's time, read as UTC; anything else goes as typed, for the API to refuse. */
const utcField = (value: string | undefined) => (value && /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(value) ? `${value}:00Z` : value);

function SearchForm(props: { fields: Record<string, string | undefined> }) {
  const f = props.fields;
  return (
    <form method="get" action="/admin/calls" class="panel filters">
      <label>
        Product
        <select name="product">
          {["", ...products().map((p) => p.id)].map((id) => (
            <option value={id} selected={f.product === id}>
              {id || "any"}
            </option>
          ))}
        </select>
      </label>
      <label>
        Account (empty: every account, last 24 h)
        <input name="account" value={f.account ?? ""} />
      </label>
      <label>
        Client address
        <input name="address" value={f.address ?? ""} size={28} />
      </label>
      <label>
        From (UTC)
        <input type="datetime-local" name="since" value={f.since ?? ""} />
      </label>
      <label>
        To (UTC)
        <input type="datetime-local" name="until" value={f.until ?? ""} />
      </label>
      <button type="submit">Search calls</button>
    </form>
  );
}

const keyLink = (id: string, text: string) => (
  <a class="mono" href={`/admin/keys/${encodeURIComponent(id)}`}>
    {text}
  </a>
);

function KeysSeen(props: { keys: KeySeen[]; complete: boolean }) {
  if (props.keys.length === 0) return <p class="muted">No call matches.</p>;
  return (
    <>
      <Table head={["Key", "Label", "Product / account", "First call", "Last call", "Calls", "Admitted"]} numeric={["Calls", "Admitted"]}>
        {props.keys.map((k) => (
          <tr>
            <td>{keyLink(k.key_id, `${k.prefix}…${k.last4}`)}</td>
            <td>{k.label ?? "—"}</td>
            <td class="mono">{`${k.product} / ${k.account}`}</td>
            <td>
              <Time iso={k.first_seen} />
            </td>
            <td>
              <Time iso={k.last_seen} />
            </td>
            <td class="num">{k.calls}</td>
            <td class="num">{k.admitted}</td>
          </tr>
        ))}
      </Table>
      {!props.complete && <p class="muted">The 100 most recently used keys only: narrow the search.</p>}
    </>
  );
}

function CallsFound(props: { calls: FoundCall[] }) {
  return (
    <Table head={["Time", "Key", "Account", "Call", "Status", "Outcome", "Address", "Country / ASN", "User agent"]} numeric={["Status"]}>
      {props.calls.map((call) => (
        <tr>
          <td>
            <Time iso={call.time} />
          </td>
          <td>{keyLink(call.key_id, call.key_id)}</td>
          <td class="mono">{`${call.product} / ${call.account}`}</td>
          <td class="mono">{`${call.method} ${call.path}`}</td>
          <td class="num">{call.status}</td>
          <td>{call.outcome}</td>
          <td class="mono">{call.client_address ?? "—"}</td>
          <td>{`${call.country ?? "—"} / ${call.asn ?? "—"}`}</td>
          <td>{call.user_agent ?? "—"}</td>
        </tr>
      ))}
    </Table>
  );
}

/**
 * Calls: the admin API's call search (by client address and time, in one account or
 * across all accounts for the last 24 hours), and a key's calls as a download.
 */
export function registerCalls(app: Hono<ConsoleEnv>) {
  app.get("/calls", async (c) => {
    const fields = queryFields(c, FILTERS);
    const searched = Object.values({ ...fields, cursor: undefined }).some(Boolean);
    const { result, problem } = searched
      ? await adminListing<CallSearchPage>(c, `/calls${query({ ...fields, since: utcField(fields.since), until: utcField(fields.until) })}`)
      : { result: null, problem: null };
    return render(
      c,
      "Calls",
      () => (
        <>
          <h1>Calls</h1>
          <p class="muted">
            Every call made with a key, by client address and time: within one account (product and account) over the whole usage log, or
            across all accounts over the last 24 hours.
          </p>
          <SearchForm fields={fields} />
          {problem && <Notice kind="error">{problem}</Notice>}
          {result && (
            <>
              <p>
                {"From "}
                <Time iso={result.since} />
                {" to "}
                <Time iso={result.until} />
              </p>
              <h2>Keys</h2>
              <KeysSeen keys={result.keys} complete={result.keys_complete} />
              <h2>Calls</h2>
              <CallsFound calls={result.calls} />
              <NextPage path="/admin/calls" fields={fields} cursor={result.next_cursor} />
            </>
          )}
        </>
      ),
      problem ? 400 : 200,
    );
  });

  // The admin API's export, streamed on as a download; its next file's link points here too.
  app.get("/keys/:id/export", async (c) => {
    const id = c.req.param("id");
    const fields = queryFields(c, ["format", "since", "until", "cursor"] as const);
    const path = `/keys/${encodeURIComponent(id)}/usage/export`;
    const response = await adminFetch(
      c,
      "GET",
      `${path}${query({ ...fields, since: utcField(fields.since), until: utcField(fields.until) })}`,
    );
    if (!response.ok) throw await adminError(response);
    const headers = new Headers();
    for (const name of ["Content-Type", "Content-Disposition", "Zgate-Export-Calls", "Zgate-Next-Cursor"]) {
      const value = response.headers.get(name);
      if (value) headers.set(name, value);
    }
    const next = response.headers.get("Zgate-Next-Cursor");
    if (next) headers.set("Link", `</admin/keys/${encodeURIComponent(id)}/export${query({ ...fields, cursor: next })}>; rel="next"`);
    return new Response(response.body, { status: 200, headers });
  });
}
