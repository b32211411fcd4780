import type { Hono } from "hono";
import { products } from "../../products";
import { AdminApiError, adminCall, type ConsoleEnv } from "../admin-client";
import type { ApiKey } from "../api-types";
import { Csrf, Notice } from "../layout";
import { render } from "../render";

/** A key's plaintext, on the one page that ever shows it (the admin API answer that made it). */
export function SecretOnce(props: { secret: string }) {
  return (
    <Notice kind="warn">
      <p>The new key, shown this once (copy it now; it is not stored):</p>
      <p class="mono secret">{props.secret}</p>
    </Notice>
  );
}

const FIELDS = ["product", "account", "label", "scopes", "plan", "expires_on", "mode"] as const;
type Values = Partial<Record<(typeof FIELDS)[number], string>>;

function CreateForm(props: { csrf: string; values: Values; problem?: string }) {
  const v = props.values;
  return (
    <>
      <h1>Create key</h1>
      {props.problem && <Notice kind="error">{props.problem}</Notice>}
      <form method="post" action="/admin/keys/new" class="panel">
        <Csrf token={props.csrf} />
        <label>
          Product
          <select name="product" required>
            {products().map((p) => (
              <option value={p.id} selected={v.product === p.id}>
                {p.id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Account (a ZakGT key's account is its user id)
          <input name="account" required maxlength={128} value={v.account ?? ""} />
        </label>
        <label>
          Label (optional)
          <input name="label" maxlength={100} value={v.label ?? ""} />
        </label>
        <label>
          Scopes (comma-separated module names; empty: every module)
          <input name="scopes" value={v.scopes ?? ""} />
        </label>
        <label>
          Plan (empty: the product's default)
          <input name="plan" maxlength={50} value={v.plan ?? ""} />
        </label>
        <label>
          Expires on (UTC, at the start of that day; empty: never)
          <input type="date" name="expires_on" value={v.expires_on ?? ""} />
        </label>
        <label>
          <span>
            <input type="checkbox" name="mode" value="test" checked={v.mode === "test"} /> Test key (ZakGT only: zak_test_, sent to the test
            origin)
          </span>
        </label>
        <p class="actions">
          <button type="submit">Create key</button>
        </p>
      </form>
    </>
  );
}

/** The form as the admin API's create body: blanks left out, for the API to default or refuse. */
function createBody(v: Values) {
  const scopes = (v.scopes ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    product: v.product,
    account: v.account,
    label: v.label || undefined,
    plan: v.plan || undefined,
    scopes: scopes.length > 0 ? scopes : undefined,
    // A date picker's day as its start, UTC; anything else goes as typed, for the API to refuse.
    expires_at: v.expires_on ? (/^\d{4}-\d\d-\d\d$/.test(v.expires_on) ? `${v.expires_on}T00:00:00Z` : v.expires_on) : undefined,
    mode: v.mode === "test" ? "test" : undefined,
  };
}

/** Create key: the admin API's create call (audited as `key.create` under who is signed in), its plaintext shown once. */
export function registerNewKey(app: Hono<ConsoleEnv>) {
  app.get("/keys/new", (c) => render(c, "Create key", (csrf) => <CreateForm csrf={csrf} values={{ account: c.req.query("account") }} />));

  app.post("/keys/new", async (c) => {
    const form = await c.req.parseBody();
    const values: Values = Object.fromEntries(FIELDS.map((name) => [name, typeof form[name] === "string" ? form[name].trim() : ""]));
    const created = await adminCall<ApiKey & { key: string }>(c, "POST", "/keys", createBody(values)).catch((err) => {
      if (err instanceof AdminApiError && (err.status === 400 || err.status === 409)) return err;
      throw err;
    });
    if (created instanceof AdminApiError) {
      const status = created.status as 400 | 409;
      return render(c, "Create key", (csrf) => <CreateForm csrf={csrf} values={values} problem={created.message} />, status);
    }
    return render(c, "Key created", () => (
      <>
        <h1>Key created</h1>
        <SecretOnce secret={created.key} />
        <p>
          {`${created.product} / ${created.account}${created.label ? ` · ${created.label}` : ""}. `}
          <a href={`/admin/keys/${encodeURIComponent(created.id)}`}>The key's page</a>
        </p>
      </>
    ));
  });
}
