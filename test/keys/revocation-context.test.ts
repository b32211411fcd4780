import { describe, expect, it } from "vitest";
import { useTestClock } from "../clock";
import { admin, call, createKey, freshAccount, json, keyHeaders, limitOverrides, mintToken, sims } from "../helpers";
import { fetchUrl, finishedImage, zskyClient } from "../results/zsky-client";

const roomy = limitOverrides({ zsky: { windows: { burst: { limit: 100_000 } }, generation: { concurrentJobsPerKey: 50 } } });

async function auditOf(target: string) {
  return (await json(await admin(`/audit?target=${target}`))).entries as {
    actor: string;
    action: string;
    detail: Record<string, unknown>;
  }[];
}

/** A ZSky key with one stored result and its link. */
async function keyWithResult(account = freshAccount()) {
  const issued = await createKey("zsky", { account });
  const { response } = await finishedImage(zskyClient(issued.key, roomy), "a lighthouse at dusk");
  expect(response.status).toBe(200);
  return { ...issued, url: (await json(response)).result_url as string };
}

describe("revocations carry a reason and a ticket", () => {
  it("stored on the key and in the audit entry with the acting identity", async () => {
    const { id, key } = await createKey("zappway");
    const response = await admin(`/keys/${id}/revoke`, { json: { reason: "pushed to a public repo", ticket: "SEC-1234" } });
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({
      id,
      status: "revoked",
      revoked_by: "admin:token",
      revoke_reason: "pushed to a public repo",
      revoke_ticket: "SEC-1234",
      result_links_revoked: 0,
    });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(401);
    const [entry] = await auditOf(id);
    expect(entry).toMatchObject({
      actor: "admin:token",
      action: "key.revoke",
      detail: { reason: "pushed to a public repo", ticket: "SEC-1234" },
    });
    // A second revoke changes nothing recorded about the first.
    await admin(`/keys/${id}/revoke`, { json: { reason: "again" } });
    expect((await json(await admin(`/keys/${id}`))).revoke_reason).toBe("pushed to a public repo");
  });

  it("an Access identity is the actor", async () => {
    const access = { ACCESS_TEAM_DOMAIN: "zgate-sec.cloudflareaccess.com", ACCESS_AUD: "aud-tag-123", ACCESS_JWKS_URL: sims.jwksUrl };
    const token = await mintToken({ iss: "https://zgate-sec.cloudflareaccess.com", aud: "aud-tag-123", email: "oncall@zakgt.test" });
    const { id } = await createKey("zsky");
    const response = await call(`/admin/v1/keys/${id}/revoke`, {
      method: "POST",
      headers: { "Cf-Access-Jwt-Assertion": token, "Content-Type": "application/json" },
      body: JSON.stringify({ ticket: "INC-9" }),
      settings: access,
    });
    expect(await json(response)).toMatchObject({ revoked_by: "admin:oncall@zakgt.test", revoke_ticket: "INC-9", revoke_reason: null });
    expect((await auditOf(id))[0]!.actor).toBe("admin:oncall@zakgt.test");
    // The console's "what did this engineer do" view.
    const byActor = (await json(await admin("/audit?actor=admin%3Aoncall%40zakgt.test&action=key.revoke"))).entries;
    expect(byActor.map((e: { target: string }) => e.target)).toContain(id);
    expect(byActor.every((e: { actor: string }) => e.actor === "admin:oncall@zakgt.test")).toBe(true);
  });

  it("400 on a bad reason, ticket or option, and the key stays active", async () => {
    const { id } = await createKey("zsky");
    for (const body of [{ reason: "x".repeat(501) }, { reason: "" }, { ticket: 5 }, { invalidate_result_links: "yes" }, { why: "x" }]) {
      const response = await admin(`/keys/${id}/revoke`, { json: body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await json(response)).error.code).toBe("BAD_REQUEST");
    }
    expect((await json(await admin(`/keys/${id}`))).status).toBe("active");
    const leaked = await admin("/keys/revoke-leaked", { json: { key: "zsky_live_x", ticket: "t".repeat(201) } });
    expect(leaked.status).toBe(400);
  });

  it("revoke-sessions takes them too", async () => {
    const userId = `usr_${crypto.randomUUID()}`;
    const { id } = await createKey("zakgt", { account: userId });
    const response = await admin(`/users/${userId}/revoke-sessions`, {
      json: { revoke_keys: true, reason: "account takeover", ticket: "SEC-7" },
    });
    expect(await json(response)).toMatchObject({ keys_revoked: [id] });
    expect(await json(await admin(`/keys/${id}`))).toMatchObject({ revoke_reason: "account takeover", revoke_ticket: "SEC-7" });
  });
});

describe("revoke-leaked answers with every key it revoked and why", () => {
  it("a leaked key the customer already rotated: says so, and revokes the successor whoever made it", async () => {
    const old = await createKey("zsky");
    const rotated = await json(await call("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", old.key) }));
    const response = await admin("/keys/revoke-leaked", { json: { key: old.key, reason: "found on GitHub", ticket: "SEC-42" } });
    expect(response.status).toBe(200);
    const body = await json(response);
    expect(body).toMatchObject({ id: old.id, status: "revoked", already_rotated: true });
    expect(body.revoked).toEqual([
      { id: old.id, why: "leaked", replaces: null, already_revoked: true, previously_revoked_by: `key:${old.id}`, result_links_revoked: 0 },
      {
        id: rotated.key_id,
        why: "successor_of_leaked",
        replaces: old.id,
        already_revoked: false,
        previously_revoked_by: null,
        result_links_revoked: 0,
      },
    ]);
    expect((await call("/zsky/v1/usage", { headers: keyHeaders("zsky", rotated.key) })).status).toBe(401);
    expect(await json(await admin(`/keys/${rotated.key_id}`))).toMatchObject({ revoke_reason: "found on GitHub", revoke_ticket: "SEC-42" });
    expect((await auditOf(rotated.key_id))[0]).toMatchObject({
      action: "key.revoke_leaked",
      detail: { why: "successor_of_leaked", leaked_key: old.id, ticket: "SEC-42" },
    });
  });

  it("an active leaked key: only it, already_rotated false", async () => {
    const { id, key } = await createKey("zappway");
    const body = await json(await admin("/keys/revoke-leaked", { json: { key } }));
    expect(body.already_rotated).toBe(false);
    expect(body.revoked).toEqual([
      { id, why: "leaked", replaces: null, already_revoked: false, previously_revoked_by: null, result_links_revoked: 0 },
    ]);
  });
});

describe("outstanding ZSky result links", () => {
  it("revoke-leaked refuses them by default: the very next download is 403 in ZSky's envelope", async () => {
    const { key, url } = await keyWithResult();
    expect((await fetchUrl(url)).status).toBe(200);
    const body = await json(await admin("/keys/revoke-leaked", { json: { key } }));
    expect(body.result_links_revoked).toBe(1);
    const download = await fetchUrl(url);
    expect(download.status).toBe(403);
    expect(await json(download)).toEqual({ error: "Download link revoked" });
  });

  it("a plain revoke leaves them unless asked; asked, they stop, and a live key of the account gets a working new link", async () => {
    const account = freshAccount();
    const kept = await keyWithResult(account);
    await admin(`/keys/${kept.id}/revoke`, { method: "POST" });
    expect((await fetchUrl(kept.url)).status).toBe(200);

    const cut = await keyWithResult(account);
    const revoked = await json(await admin(`/keys/${cut.id}/revoke`, { json: { invalidate_result_links: true } }));
    expect(revoked.result_links_revoked).toBe(1);
    expect((await fetchUrl(cut.url)).status).toBe(403);
    expect((await auditOf(cut.id))[0]!.detail).toMatchObject({ result_links_revoked: 1 });

    // Links count in whole seconds: one signed in the revocation's second is refused too.
    await useTestClock().advance(1000);
    const other = await createKey("zsky", { account });
    const jobId = new URL(cut.url).pathname.split("/").pop()!;
    const repoll = await zskyClient(other.key, roomy).poll(jobId);
    expect(repoll.status).toBe(200);
    expect((await fetchUrl((await json(repoll)).result_url)).status).toBe(200);
  });

  it("a leaked key that was rolled: its links are cut though its jobs went to the kept successor, which polls a new one", async () => {
    const { id, key, url } = await keyWithResult();
    const successor = await json(await admin(`/keys/${id}/roll`, { json: { expire_old_in_seconds: 3600 } }));
    const leaked = await json(await admin("/keys/revoke-leaked", { json: { key } }));
    // Exactly what happened: the leaked key revoked (its jobs had gone to the successor), the successor kept and
    // working, the one link cut counted under it, in the answer and in the leaked key's audit entry alike.
    expect(leaked.revoked).toEqual([expect.objectContaining({ id, already_revoked: false, result_links_revoked: 0 })]);
    expect(leaked.kept).toEqual([{ id: successor.id, replaces: id, why: "rolled_by_admin", status: "active", result_links_revoked: 1 }]);
    expect(leaked.result_links_revoked).toBe(1);
    expect((await auditOf(id)).find((e) => e.action === "key.revoke_leaked")!.detail).toMatchObject({
      why: "leaked",
      result_links_revoked: 1,
      result_links_revoked_under: { [successor.id]: 1 },
    });
    expect((await zskyClient(successor.key, roomy).poll(new URL(url).pathname.split("/").pop()!)).status).toBe(200);
    expect((await fetchUrl(url)).status).toBe(403);
    await useTestClock().advance(1000);
    const jobId = new URL(url).pathname.split("/").pop()!;
    const repoll = await zskyClient(successor.key, roomy).poll(jobId);
    expect(repoll.status).toBe(200);
    expect((await fetchUrl((await json(repoll)).result_url)).status).toBe(200);
  });
});
