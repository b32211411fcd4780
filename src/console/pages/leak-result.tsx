import type { ApiKey } from "../api-types";
import { Notice, Table } from "../layout";
import { productById } from "../../products";

export interface LeakOutcome {
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

export function KeyLink(props: { id: string }) {
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
export function LeakResult(props: { k: ApiKey; outcome: LeakOutcome; linksAsked: boolean }) {
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
        {productById(props.k.product)?.resultLinks && <LinksOutcome o={o} asked={props.linksAsked} />}
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
