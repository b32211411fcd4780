import type { Context, Hono } from "hono";
import { MAX_ROLL_GRACE_SECONDS } from "../../keys/key-lifecycle";
import { AdminApiError, adminCall, type ConsoleEnv } from "../admin-client";
import type { ApiKey } from "../api-types";
import { Csrf, Notice, Status, Table, Time } from "../layout";
import { render } from "../render";

type Action = "revoke" | "revoke-leaked" | "roll";

const TITLES: Record<Action, string> = {
  revoke: "Revoke key",
  "revoke-leaked": "Revoke leaked key and its rotations",
  roll: "Roll key with a grace period",
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
        {props.action !== "roll" && k.product === "zsky" && (
          <label>
            <span>
              <input type="checkbox" name="invalidate_result_links" value="1" checked={props.action === "revoke-leaked"} /> Also refuse
              every result link issued so far for this key's jobs
            </span>
          </label>
        )}
        <label>
          Reason (required, kept on the key and in the audit log)
          <textarea name="reason" required maxlength={500} rows={2} cols={70}>
            {v.reason ?? ""}
          </textarea>
        </label>
        <label>
          Ticket (optional)
          <input name="ticket" maxlength={200} value={v.ticket ?? ""} />
        </label>
        <p class="actions">
          <button class="danger" type="submit">
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

/** The revoke fields a form gives, as the admin API takes them (result links only for ZSky keys, which have them). */
function revokeContext(k: ApiKey, form: Record<string, unknown>) {
  return {
    reason: field(form, "reason"),
    ticket: field(form, "ticket") || undefined,
    invalidate_result_links: k.product === "zsky" ? form.invalidate_result_links === "1" : undefined,
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

interface LeakOutcome {
  revoked: {
    id: string;
    why: "leaked" | "successor_of_leaked";
    replaces: string | null;
    already_revoked: boolean;
    previously_revoked_by: string | null;
    result_links_revoked: number;
  }[];
  /** Successors an admin rolled to: left working. */
  kept: { id: string; replaces: string; status: "active" | "revoked" | "expired"; result_links_revoked: number }[];
  result_links_revoked: number;
}

function KeyLink(props: { id: string }) {
  return (
    <a class="mono" href={`/admin/keys/${encodeURIComponent(props.id)}`}>
      {props.id}
    </a>
  );
}

/** A list of key links, "a, b and c". */
function KeyList(props: { ids: string[] }) {
  return (
    <>
      {props.ids.map((id, i) => (
        <>
          {i === 0 ? "" : i === props.ids.length - 1 ? " and " : ", "}
          <KeyLink id={id} />
        </>
      ))}
    </>
  );
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** What happened to result links, exactly: how many were refused, and under which key. */
function LinksOutcome(props: { o: LeakOutcome; asked: boolean }) {
  const { o, asked } = props;
  if (!asked) return <p>Result links were not refused (not asked): links handed out so far keep working until they expire.</p>;
  if (o.result_links_revoked === 0) return <p>Result links: no stored result had a link to refuse.</p>;
  const own = o.revoked.reduce((sum, r) => sum + r.result_links_revoked, 0);
  const underKept = o.kept.filter((k) => k.result_links_revoked > 0);
  return (
    <p>
      {`Result links refused: ${plural(o.result_links_revoked, "stored result")} (the very next download of each is 403)`}
      {own > 0 && `; ${own} of the revoked keys' own jobs`}
      {underKept.map((k) => (
        <>
          {`; ${k.result_links_revoked} under the kept key `}
          <KeyLink id={k.id} />
          {", since the leaked key's jobs and polls went to it (a poll with it signs new links)"}
        </>
      ))}
      .
    </p>
  );
}

/** What revoke-leaked did, exactly: which keys it revoked now, which were revoked before, which it kept working, and the links it cut. */
function LeakResult(props: { k: ApiKey; outcome: LeakOutcome; linksAsked: boolean }) {
  const o = props.outcome;
  const now = o.revoked.filter((r) => !r.already_revoked);
  const before = o.revoked.filter((r) => r.already_revoked);
  // The newest key of the revoked chain (no other revoked key replaces it): what a replacement stands in for.
  const tip = o.revoked.find((r) => !o.revoked.some((other) => other.replaces === r.id)) ?? o.revoked[0];
  return (
    <>
      <h1>Leaked key revoked</h1>
      <Notice>
        {now.length > 0 && (
          <p>
            Revoked now: <KeyList ids={now.map((r) => r.id)} />
            {". Every request with "}
            {now.length === 1 ? "it" : "any of them"} is refused (401) from now on.
          </p>
        )}
        {before.map((r) => (
          <p>
            <KeyLink id={r.id} />
            {` was already revoked before this (by ${r.previously_revoked_by ?? "?"}): it stays refused; its first revocation's reason is kept.`}
          </p>
        ))}
        {o.kept.map((k) => (
          <p>
            Not revoked: <KeyLink id={k.id} />
            {k.status === "active" ? " still works" : ` is ${k.status} (as it was before this)`}
            {". An admin rolled "}
            <KeyLink id={k.replaces} />
            {" to it, so its plaintext was never with the leaked key."}
          </p>
        ))}
        {props.k.product === "zsky" && <LinksOutcome o={o} asked={props.linksAsked} />}
      </Notice>
      <Table head={["Key", "What it is", "Before this", "Now", "Result links refused"]} numeric={["Result links refused"]}>
        {o.revoked.map((r) => (
          <tr>
            <td>
              <KeyLink id={r.id} />
            </td>
            <td>
              {r.why === "leaked" ? (
                "leaked: the reported key"
              ) : (
                <>successor_of_leaked: rotated from {r.replaces ?? "?"} with the leaked key</>
              )}
            </td>
            <td>{r.already_revoked ? `revoked by ${r.previously_revoked_by ?? "?"}` : "not revoked"}</td>
            <td>revoked</td>
            <td class="num">{r.result_links_revoked}</td>
          </tr>
        ))}
        {o.kept.map((k) => (
          <tr>
            <td>
              <KeyLink id={k.id} />
            </td>
            <td>rolled_by_admin: rolled from {k.replaces} by an admin</td>
            <td>{k.status}</td>
            <td>{k.status === "active" ? "kept: still works" : `kept: ${k.status}`}</td>
            <td class="num">{k.result_links_revoked}</td>
          </tr>
        ))}
      </Table>
      {!o.kept.some((k) => k.status === "active") && tip && (
        <p class="actions">
          No key of this chain works any more: the customer needs a new one.
          <a class="button" href={`/admin/keys/${encodeURIComponent(tip.id)}/replace`}>
            Create replacement key…
          </a>
        </p>
      )}
    </>
  );
}

type Rolled = ApiKey & { key: string; old_key_ends_at: string };

function RollResult(props: { old: ApiKey; successor: Rolled }) {
  const s = props.successor;
  return (
    <>
      <h1>Key rolled</h1>
      <Notice kind="warn">
        <p>The new key, shown this once (copy it now; it is not stored):</p>
        <p class="mono secret">{s.key}</p>
      </Notice>
      <p>
        {`The old key ${props.old.prefix}…${props.old.last4} keeps working until `}
        <Time iso={s.old_key_ends_at} />. <a href={`/admin/keys/${encodeURIComponent(s.id)}`}>New key's page</a> ·{" "}
        <a href={`/admin/keys/${encodeURIComponent(props.old.id)}`}>Old key's page</a>
      </p>
    </>
  );
}

/** Revoke, revoke-leaked and roll: a confirmation page (no script needed), then the admin API call. */
export function registerKeyActions(app: Hono<ConsoleEnv>) {
  for (const action of ["revoke", "revoke-leaked", "roll"] as const) {
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

  app.post("/keys/:id/lift-suspension", async (c) => {
    const k = await keyOf(c);
    await adminCall(c, "POST", `/keys/${encodeURIComponent(k.id)}/lift-suspension`);
    return c.redirect(`/admin/keys/${encodeURIComponent(k.id)}?done=lifted`, 303);
  });
}
