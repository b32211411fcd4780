import type { Context, Hono } from "hono";
import { MAX_ROLL_GRACE_SECONDS } from "../../keys/key-lifecycle";
import { AdminApiError, adminCall, type ConsoleEnv } from "../admin-client";
import type { ApiKey } from "../api-types";
import { Csrf, Notice, Status, Time } from "../layout";
import { render } from "../render";
import { LeakResult, type LeakOutcome } from "./leak-result";
import { SecretOnce } from "./new-key";
import { productById } from "../../products";

type Action = "revoke" | "revoke-leaked" | "roll" | "replace";

const TITLES: Record<Action, string> = {
  revoke: "Revoke key",
  "revoke-leaked": "Revoke leaked key and its rotations",
  roll: "Roll key with a grace period",
  replace: "Create replacement key",
};

const field = (form: Record<string, unknown>, name: string) => (typeof form[name] === "string" ? (form[name] as string).trim() : "");

/** The confirmation page of a destructive action: what it does, and the reason it needs. */
function ConfirmForm(props: { action: Action; k: ApiKey; csrf: string; problem?: string; values?: Record<string, string> }) {
  const k = props.k;
  const v = props.values ?? {};
  const base = `/admin/keys/${encodeURIComponent(k.id)}`;
  return (
    <>
      <h1>{TITLES[props.action]}</h1>
      <p>
        <span class="mono">{`${k.prefix}…${k.last4}`}</span> {k.label ?? ""} · {k.product} / <span class="mono">{k.account}</span>{" "}
        <Status status={k.status} />
      </p>
      {props.problem && <Notice kind="error">{props.problem}</Notice>}
      <form method="post" action={`${base}/${props.action}`} class="panel">
        <Csrf token={props.csrf} />
        {props.action === "revoke" && (
          <p>Every request with this key is refused (401) from the moment this returns. It cannot be undone.</p>
        )}
        {props.action === "revoke-leaked" && (
          <>
            <p>
              Revokes this key and every key rotated from it by whoever held it. It cannot be undone. Paste the leaked key again to confirm
              it is this one.
            </p>
            {k.status !== "active" && (
              <p>
                {`This key is ${k.status} already: this still revokes every key rotated from it and, if asked, refuses the result links it was handed.`}
              </p>
            )}
            <label>
              Leaked key
              <input type="password" name="key" autocomplete="off" required size={70} />
            </label>
          </>
        )}
        {props.action === "roll" && (
          <>
            <p>
              Issues a successor with this key's label, scopes, plan and limits, shown once. This key keeps working for the grace period,
              then stops.
            </p>
            <label>
              Old key keeps working for (seconds, 0 = stops now, at most {MAX_ROLL_GRACE_SECONDS})
              <input
                type="number"
                name="expire_old_in_seconds"
                min="0"
                max={String(MAX_ROLL_GRACE_SECONDS)}
                required
                value={v.expire_old_in_seconds ?? "86400"}
              />
            </label>
          </>
        )}
        {props.action === "replace" && (
          <p>
            Issues a new key for {k.product} / <span class="mono">{k.account}</span> with this key's label, scopes, plan and limits (and its
            expiry, if still ahead), shown once. This key stays as it is; a later revocation of it never reaches the new one.
          </p>
        )}
        {(props.action === "revoke" || props.action === "revoke-leaked") && productById(k.product)?.resultLinks && (
          <label>
            <span>
              <input type="checkbox" name="invalidate_result_links" value="1" checked={props.action === "revoke-leaked"} /> Also refuse
              every result link issued so far for this key's jobs
            </span>
          </label>
        )}
        <label>
          {`Reason (required, kept ${props.action === "revoke" || props.action === "revoke-leaked" ? "on the key and " : ""}in the audit log)`}
          <textarea name="reason" required maxlength={500} rows={2} cols={70}>
            {v.reason ?? ""}
          </textarea>
        </label>
        <label>
          Ticket (optional)
          <input name="ticket" maxlength={200} value={v.ticket ?? ""} />
        </label>
        <p class="actions">
          <button class={props.action === "replace" ? undefined : "danger"} type="submit">
            {`Confirm: ${TITLES[props.action].toLowerCase()}`}
          </button>
          <a class="button secondary" href={base}>
            Cancel
          </a>
        </p>
      </form>
    </>
  );
}

/** The revoke fields a form gives, as the admin API takes them (result links only for keys that have them: ZSky's). */
function revokeContext(k: ApiKey, form: Record<string, unknown>) {
  return {
    reason: field(form, "reason"),
    ticket: field(form, "ticket") || undefined,
    invalidate_result_links: productById(k.product)?.resultLinks ? form.invalidate_result_links === "1" : undefined,
  };
}

async function keyOf(c: Context<ConsoleEnv>): Promise<ApiKey> {
  return adminCall<ApiKey>(c, "GET", `/keys/${encodeURIComponent(c.req.param("id")!)}`);
}

/** Re-renders the confirmation with what was typed (the pasted key excepted) and why it was refused. */
async function refuse(
  c: Context<ConsoleEnv>,
  action: Action,
  k: ApiKey,
  problem: string,
  form: Record<string, unknown>,
  status: 400 | 409 = 400,
) {
  const values = {
    reason: field(form, "reason"),
    ticket: field(form, "ticket"),
    expire_old_in_seconds: field(form, "expire_old_in_seconds"),
  };
  return render(c, TITLES[action], (csrf) => <ConfirmForm action={action} k={k} csrf={csrf} problem={problem} values={values} />, status);
}

type Rolled = ApiKey & { key: string; old_key_ends_at: string };

function RollResult(props: { old: ApiKey; successor: Rolled }) {
  const s = props.successor;
  const old = `/admin/keys/${encodeURIComponent(props.old.id)}`;
  return (
    <>
      <h1>Key rolled</h1>
      <SecretOnce secret={s.key} />
      <p>
        {`The old key ${props.old.prefix}…${props.old.last4} ${Date.parse(s.old_key_ends_at) <= Date.now() ? "stopped working at" : "keeps working until"} `}
        <Time iso={s.old_key_ends_at} />. <a href={`/admin/keys/${encodeURIComponent(s.id)}`}>New key's page</a> ·{" "}
        <a href={old}>Old key's page</a>
      </p>
      <p class="actions">
        If the old key leaked, revoke it as leaked too: that revokes the keys rotated from it and cuts its result links, and leaves the new
        key working.
        <a class="button danger" href={`${old}/revoke-leaked`}>
          Revoke the old key as leaked…
        </a>
      </p>
    </>
  );
}

type Replacement = ApiKey & { key: string };

function ReplaceResult(props: { old: ApiKey; replacement: Replacement }) {
  const r = props.replacement;
  return (
    <>
      <h1>Replacement key created</h1>
      <SecretOnce secret={r.key} />
      <p>
        {`It replaces ${props.old.prefix}…${props.old.last4} (${props.old.status}) for ${r.product} / ${r.account}. `}
        <a href={`/admin/keys/${encodeURIComponent(r.id)}`}>New key's page</a> ·{" "}
        <a href={`/admin/keys/${encodeURIComponent(props.old.id)}`}>Old key's page</a>
      </p>
    </>
  );
}

/** Revoke, revoke-leaked, roll and replace: a confirmation page (no script needed), then the admin API call. */
export function registerKeyActions(app: Hono<ConsoleEnv>) {
  for (const action of ["revoke", "revoke-leaked", "roll", "replace"] as const) {
    app.get(`/keys/:id/${action}`, async (c) => {
      const k = await keyOf(c);
      return render(c, TITLES[action], (csrf) => <ConfirmForm action={action} k={k} csrf={csrf} />);
    });
  }

  app.post("/keys/:id/revoke", async (c) => {
    const [k, form] = await Promise.all([keyOf(c), c.req.parseBody()]);
    const reason = field(form, "reason");
    if (!reason) return refuse(c, "revoke", k, "Give a reason.", form);
    await adminCall(c, "POST", `/keys/${encodeURIComponent(k.id)}/revoke`, revokeContext(k, form));
    return c.redirect(`/admin/keys/${encodeURIComponent(k.id)}?done=revoked`, 303);
  });

  app.post("/keys/:id/revoke-leaked", async (c) => {
    const [k, form] = await Promise.all([keyOf(c), c.req.parseBody()]);
    const reason = field(form, "reason");
    const key = field(form, "key");
    if (!reason) return refuse(c, "revoke-leaked", k, "Give a reason.", form);
    // The admin API revokes whatever key was pasted: make sure it is the one on this page.
    const found = await adminCall<ApiKey>(c, "POST", "/keys/lookup", { key }).catch((err) => {
      if (err instanceof AdminApiError && err.status < 500) return null;
      throw err;
    });
    if (found?.id !== k.id) return refuse(c, "revoke-leaked", k, "The pasted key is not this key.", form);
    const context = revokeContext(k, form);
    const outcome = await adminCall<LeakOutcome>(c, "POST", "/keys/revoke-leaked", { key, ...context });
    return render(c, "Leaked key revoked", () => (
      <LeakResult k={k} outcome={outcome} linksAsked={context.invalidate_result_links === true} />
    ));
  });

  app.post("/keys/:id/roll", async (c) => {
    const [k, form] = await Promise.all([keyOf(c), c.req.parseBody()]);
    const reason = field(form, "reason");
    if (!reason) return refuse(c, "roll", k, "Give a reason.", form);
    // Digits only become a number; anything else (an empty field too, never "0 = now") goes as typed, for the admin API to refuse.
    const grace = field(form, "expire_old_in_seconds");
    const body = {
      expire_old_in_seconds: /^\d{1,9}$/.test(grace) ? Number(grace) : grace,
      reason,
      ticket: field(form, "ticket") || undefined,
    };
    const successor = await adminCall<Rolled>(c, "POST", `/keys/${encodeURIComponent(k.id)}/roll`, body).catch((err) => {
      if (err instanceof AdminApiError && (err.status === 400 || err.status === 409)) return err;
      throw err;
    });
    if (successor instanceof AdminApiError) return refuse(c, "roll", k, successor.message, form, successor.status as 400 | 409);
    return render(c, "Key rolled", () => <RollResult old={k} successor={successor} />);
  });

  app.post("/keys/:id/replace", async (c) => {
    const [k, form] = await Promise.all([keyOf(c), c.req.parseBody()]);
    const reason = field(form, "reason");
    if (!reason) return refuse(c, "replace", k, "Give a reason.", form);
    const body = { reason, ticket: field(form, "ticket") || undefined };
    const replacement = await adminCall<Replacement>(c, "POST", `/keys/${encodeURIComponent(k.id)}/replace`, body).catch((err) => {
      if (err instanceof AdminApiError && (err.status === 400 || err.status === 409)) return err;
      throw err;
    });
    if (replacement instanceof AdminApiError) return refuse(c, "replace", k, replacement.message, form, replacement.status as 400 | 409);
    return render(c, "Replacement key created", () => <ReplaceResult old={k} replacement={replacement} />);
  });

  app.post("/keys/:id/lift-suspension", async (c) => {
    const k = await keyOf(c);
    await adminCall(c, "POST", `/keys/${encodeURIComponent(k.id)}/lift-suspension`);
    return c.redirect(`/admin/keys/${encodeURIComponent(k.id)}?done=lifted`, 303);
  });
}
