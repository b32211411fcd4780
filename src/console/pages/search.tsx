import type { Hono } from "hono";
import { products } from "../../products";
import { AdminApiError, adminCall, adminListing, query, queryFields, type ConsoleEnv } from "../admin-client";
import type { ApiKey, KeyPage } from "../api-types";
import { Csrf, NextPage, Notice, Status, Table, Time } from "../layout";
import { render } from "../render";

const FILTERS = ["product", "account", "label", "last4", "status", "created_after", "cursor"] as const;

/** A date picker's day (`2026-12-01`) as the admin API's time: that day's start, UTC. */
const dayStart = (day: string | undefined) => (day && /^\d{4}-\d\d-\d\d$/.test(day) ? `${day}T00:00:00Z` : day);

function KeyTable(props: { keys: ApiKey[] }) {
  if (props.keys.length === 0) return <p class="muted">No key matches.</p>;
  return (
    <Table head={["Key", "Label", "Product", "Account", "Status", "Created", "Last used"]}>
      {props.keys.map((k) => (
        <tr>
          <td>
            <a class="mono" href={`/admin/keys/${encodeURIComponent(k.id)}`}>{`${k.prefix}…${k.last4}`}</a>
          </td>
          <td>{k.label ?? <span class="muted">—</span>}</td>
          <td>{k.product}</td>
          <td class="mono">{k.account}</td>
          <td>
            <Status status={k.status} />
          </td>
          <td>
            <Time iso={k.created_at} />
          </td>
          <td>
            <Time iso={k.last_used_at} />
          </td>
        </tr>
      ))}
    </Table>
  );
}

/** A select of the given values, "" shown as "any". */
function Choice(props: { label: string; name: string; options: string[]; value: string | undefined }) {
  return (
    <label>
      {props.label}
      <select name={props.name}>
        {props.options.map((o) => (
          <option value={o} selected={props.value === o}>
            {o || "any"}
          </option>
        ))}
      </select>
    </label>
  );
}

function SearchForms(props: { csrf: string; fields: Record<string, string | undefined> }) {
  const f = props.fields;
  return (
    <>
      <form method="post" action="/admin/lookup" class="panel">
        <Csrf token={props.csrf} />
        <label>
          Paste a leaked key (or its SHA-256): it is looked up, not revoked, and never shown again
          <input type="password" name="key" autocomplete="off" required size={70} />
        </label>
        <p>
          <button type="submit">Find key</button>
        </p>
      </form>
      <form method="get" action="/admin/" class="panel filters">
        <Choice label="Product" name="product" options={["", ...products().map((p) => p.id)]} value={f.product} />
        <label>
          Account
          <input name="account" value={f.account ?? ""} />
        </label>
        <label>
          Label contains
          <input name="label" value={f.label ?? ""} />
        </label>
        <label>
          Last 4
          <input name="last4" value={f.last4 ?? ""} size={6} maxlength={4} />
        </label>
        <Choice label="Status" name="status" options={["", "active", "revoked", "expired"]} value={f.status} />
        <label>
          Created on or after (UTC)
          <input type="date" name="created_after" value={f.created_after ?? ""} />
        </label>
        <button type="submit">Search</button>
      </form>
    </>
  );
}

/** Key search: filters on the admin key listing (paged with its cursor), and lookup of a pasted key. */
export function registerSearch(app: Hono<ConsoleEnv>) {
  app.get("/", async (c) => {
    const fields = queryFields(c, FILTERS);
    const { result, problem } = await adminListing<KeyPage>(
      c,
      `/keys${query({ ...fields, created_after: dayStart(fields.created_after), limit: "25" })}`,
    );
    return render(
      c,
      "Key search",
      (csrf) => (
        <>
          <h1>Key search</h1>
          <SearchForms csrf={csrf} fields={fields} />
          {problem && <Notice kind="error">{problem}</Notice>}
          {result && (
            <>
              <KeyTable keys={result.keys} />
              <NextPage path="/admin/" fields={fields} cursor={result.next_cursor} />
            </>
          )}
        </>
      ),
      problem ? 400 : 200,
    );
  });

  // The key travels in a POST body, never a URL (history, logs); the answer is a redirect to its page.
  app.post("/lookup", async (c) => {
    const form = await c.req.parseBody();
    const key = typeof form.key === "string" ? form.key.trim() : "";
    try {
      const found = await adminCall<ApiKey>(c, "POST", "/keys/lookup", { key });
      return c.redirect(`/admin/keys/${encodeURIComponent(found.id)}?done=found`, 303);
    } catch (err) {
      if (!(err instanceof AdminApiError) || ![400, 404].includes(err.status)) throw err;
      return render(
        c,
        "Key search",
        (csrf) => (
          <>
            <h1>Key search</h1>
            <Notice kind="error">{err.status === 404 ? "No zgate key matches what was pasted." : err.message}</Notice>
            <SearchForms csrf={csrf} fields={{}} />
          </>
        ),
        err.status as 400 | 404,
      );
    }
  });
}
