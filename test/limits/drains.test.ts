import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { admin, bearer, callLive, createKey, json, keyHeaders, limitOverrides, newUser } from "../helpers";

/**
 * Instant revocation with a live lease: every guard change that must refuse a
 * credential's next request waits for that credential's leases to end
 * (`this.leases.drained(...)` in account-guard.ts). Here an isolate holds a live lease
 * of the credential when the change is made, every request goes through callLive
 * (which returns with the response, as a client does, while `call` would also wait
 * out the lease's refund timer), and the credential's next request, sent the moment the
 * change's response is complete, must be refused. Without the drain the isolate admits
 * that request from its lease: each drain, removed alone, fails a test here.
 */

// The longest lease life: the lease taken just before a change outlives the change by far
// under any CPU load, so a missing drain shows as an admitted request, never as luck.
const LEASE = { GUARD_LEASE_MS: "1000" };
const zappway = { ...LEASE, ...limitOverrides({ zappway: { plans: { pro: { plan_rate: { limit: 100_000 } } } } }) };
const zakgt = LEASE;
const zsky = {
  ...LEASE,
  ...limitOverrides({ zsky: { windows: { burst: { limit: 10_000 } }, generation: { concurrentJobsPerKey: 100 } } }),
};

const guardOf = (product: string, account: string) => env.ACCOUNT_GUARD.get(env.ACCOUNT_GUARD.idFromName(`${product}:${account}`));

/** A `zak_live_` key the signed-in user makes for themselves. */
async function ownKey(session: string): Promise<{ id: string; key: string }> {
  const created = await callLive("/zakgt/api/v1/developer/api-keys", {
    method: "POST",
    headers: { ...bearer(session), "Content-Type": "application/json" },
    body: "{}",
    settings: zakgt,
  });
  return (await json(created)).data;
}

/**
 * Sends `request` twice (a route called twice within a lease life is hot: the second
 * call is granted a lease with a token to spare) and checks that the guard has a lease
 * out now, so the test cannot pass for want of one.
 */
async function makeHot(guard: DurableObjectStub, request: () => Promise<Response>): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await request()).status).toBe(200);
  // The registry's own lease ends (the stored horizon is kept a lease life ahead, so it would outlive the lease).
  const leasedUntil = await runInDurableObject(guard, (object) => {
    const ends = (object as unknown as { leases: { endsByTag: Map<string, number> } }).leases.endsByTag;
    return Math.max(0, ...ends.values());
  });
  expect(leasedUntil).toBeGreaterThan(Date.now());
}

describe("keys: revoked, limited, rotated, with a lease out", () => {
  const agents = (key: string) => () => callLive("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: zappway });

  it("admin revoke: the key's next request is refused (revokeKey)", async () => {
    const { id, key, account } = await createKey("zappway", { plan: "pro" });
    await makeHot(guardOf("zappway", account), agents(key));
    expect((await admin(`/keys/${id}/revoke`, { method: "POST", live: true })).status).toBe(200);
    expect((await agents(key)()).status).toBe(401);
  });

  it("ZakGT developer-keys DELETE: the key's next request is refused (revokeKey)", async () => {
    const user = await newUser();
    const session = await user.login();
    const { id, key } = await ownKey(session);
    const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings: zakgt });
    await makeHot(guardOf("zakgt", user.userId), me);
    expect(
      (await callLive(`/zakgt/api/v1/developer/api-keys/${id}`, { method: "DELETE", headers: bearer(session), settings: zakgt })).status,
    ).toBe(200);
    expect((await me()).status).toBe(401);
  });

  it("a key's limit lowered: its next request is counted under it (setKeyLimits)", async () => {
    const { id, key, account } = await createKey("zappway", { plan: "pro" });
    await makeHot(guardOf("zappway", account), agents(key));
    const lowered = await admin(`/keys/${id}`, {
      method: "PATCH",
      json: { limit_override: { windows: { plan_rate: { limit: 1 } } } },
      live: true,
    });
    expect(lowered.status).toBe(200);
    expect((await agents(key)()).status).toBe(429);
  });

  it("an account's plan lowered: its keys' next request is counted under it (setAccountPlan)", async () => {
    const { key, account } = await createKey("zappway", { plan: "pro" });
    await makeHot(guardOf("zappway", account), agents(key));
    const body = { plan: "pro", limit_override: { windows: { plan_rate: { limit: 1 } } } };
    expect((await admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: body, settings: zappway, live: true })).status).toBe(
      200,
    );
    expect((await agents(key)()).status).toBe(429);
  });

  it("ZSky rotate: the old key's next request is refused (rotateKey)", async () => {
    const { key, account } = await createKey("zsky");
    const api = zskyApi(key);
    const jobId = await api.submit("a lighthouse render-ms:600000");
    await makeHot(guardOf("zsky", account), () => api.poll(jobId));
    const rotated = await callLive("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", key), settings: zsky });
    expect(rotated.status).toBe(200);
    expect((await api.poll(jobId)).status).toBe(401);
    expect((await zskyApi((await json(rotated)).key).poll(jobId)).status).toBe(200);
  });

  it("ZSky rotate whose wait a guard restart cut short: its retry waits for the lease (rotateKey, repeated)", async () => {
    const { key, account } = await createKey("zsky");
    const api = zskyApi(key);
    const guard = guardOf("zsky", account);
    const jobId = await api.submit("a lighthouse render-ms:600000");
    await makeHot(guard, () => api.poll(jobId));
    const rotating = callLive("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", key), settings: zsky });
    // The restart comes once the swap is made, while the rotation waits for the lease.
    const keysHeld = () =>
      runInDurableObject(guard, (_object, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM keys").one().n);
    for (let i = 0; i < 500 && (await keysHeld()) < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await keysHeld()).toBe(2);
    await expect(runInDurableObject(guard, (_object, state) => state.abort("deploy"))).rejects.toThrow("deploy");
    expect((await rotating).status).toBe(200);
    expect((await api.poll(jobId)).status).toBe(401);
  });
});

describe("sessions: logged out and revoked, with a lease out", () => {
  it("logout: the token's next request is refused (revokeToken)", async () => {
    const user = await newUser();
    const token = await user.login();
    const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(token), settings: zakgt });
    await makeHot(guardOf("zakgt", user.userId), me);
    expect((await callLive("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: zakgt })).status).toBe(200);
    expect((await me()).status).toBe(401);
  });

  it("admin revoke-sessions: the user's token's next request is refused (revokeSessions)", async () => {
    const user = await newUser();
    const token = await user.login();
    const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(token), settings: zakgt });
    await makeHot(guardOf("zakgt", user.userId), me);
    expect((await admin(`/users/${user.userId}/revoke-sessions`, { json: {}, live: true })).status).toBe(200);
    expect((await me()).status).toBe(401);
  });

  it("admin revoke-sessions with its keys: the user's key's next request is refused (revokeAllKeys)", async () => {
    const user = await newUser();
    const session = await user.login();
    const { key } = await ownKey(session);
    const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings: zakgt });
    await makeHot(guardOf("zakgt", user.userId), me);
    const revoked = await admin(`/users/${user.userId}/revoke-sessions`, { json: { revoke_keys: true }, live: true });
    expect((await json(revoked)).keys_revoked).toHaveLength(1);
    expect((await me()).status).toBe(401);
  });
});

describe("ZSky jobs: suspended and purged, with a lease out", () => {
  it("a submission blocked at submit that suspends the key: its next poll is refused (settleGeneration)", async () => {
    const { key, account } = await createKey("zsky");
    const api = zskyApi(key);
    const jobId = await api.submit("a lighthouse render-ms:600000");
    // 9 attempts, 5 blocked: one more blocked makes 6 of 10, over half (ZSky's rule).
    for (let i = 0; i < 3; i++) await api.submit(`fine ${i} render-ms:600000`);
    for (let i = 0; i < 5; i++) expect((await api.generate("blocked-at-submit")).status).toBe(451);
    await makeHot(guardOf("zsky", account), () => api.poll(jobId));
    expect((await api.generate("blocked-at-submit")).status).toBe(451);
    expect((await api.poll(jobId)).status).toBe(403);
  });

  it("a poll that finds a job blocked and suspends the key: the key's next poll is refused (finishJob)", async () => {
    const { key, account } = await createKey("zsky");
    const api = zskyApi(key);
    const jobId = await api.submit("a lighthouse render-ms:600000");
    // Ends `blocked` the moment it is polled: the 6th rejection of 10 attempts.
    const blocked = await api.submit("forbidden render-ms:0");
    for (let i = 0; i < 5; i++) expect((await api.generate("blocked-at-submit")).status).toBe(451);
    for (let i = 0; i < 3; i++) await api.submit(`fine ${i} render-ms:600000`);
    await makeHot(guardOf("zsky", account), () => api.poll(jobId));
    expect(await json(await api.poll(blocked))).toMatchObject({ job_id: blocked, status: "blocked" });
    expect((await api.poll(jobId)).status).toBe(403);
  });

  it("a suspension of a roll's successor: the grace key's next poll is refused (settleGeneration, the chain)", async () => {
    const { id, key, account } = await createKey("zsky");
    const graceKey = zskyApi(key);
    const jobId = await graceKey.submit("a lighthouse render-ms:600000");
    const successor = zskyApi((await json(await admin(`/keys/${id}/roll`, { json: { expire_old_in_seconds: 3600 }, live: true }))).key);
    // 9 attempts of the chain, 5 blocked: one more blocked makes 6 of 10.
    for (let i = 0; i < 3; i++) await successor.submit(`fine ${i} render-ms:600000`);
    for (let i = 0; i < 5; i++) expect((await successor.generate("blocked-at-submit")).status).toBe(451);
    await makeHot(guardOf("zsky", account), () => graceKey.poll(jobId));
    expect((await successor.generate("blocked-at-submit")).status).toBe(451);
    expect((await graceKey.poll(jobId)).status).toBe(403);
  });

  it("purge: the job's next poll is refused at the edge, never reaching the origin (purgeJobs)", async () => {
    const { key, account } = await createKey("zsky");
    const api = zskyApi(key);
    const jobId = await api.submit("a lighthouse render-ms:600000");
    await makeHot(guardOf("zsky", account), () => api.poll(jobId));
    expect((await callLive(`/zsky/v1/jobs/${jobId}`, { method: "DELETE", headers: keyHeaders("zsky", key), settings: zsky })).status).toBe(
      204,
    );
    // The origin has forgotten the job too, so its own 404 would look the same: a poll
    // that reaches it is answered by its echo hook (200) instead.
    expect((await api.poll(jobId, { "X-Sim-Echo": "1" })).status).toBe(404);
  });
});

function zskyApi(key: string) {
  const headers = keyHeaders("zsky", key);
  const generate = (prompt: string) =>
    callLive("/zsky/v1/images/generate", {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: JSON.stringify({ prompt }),
      settings: zsky,
    });
  return {
    generate,
    /** Submits an image job; its id. */
    submit: async (prompt: string): Promise<string> => {
      const response = await generate(prompt);
      expect(response.status).toBe(200);
      return (await json(response)).job_id as string;
    },
    poll: (jobId: string, extra: Record<string, string> = {}) =>
      callLive(`/zsky/v1/jobs/${jobId}`, { headers: { ...headers, ...extra }, settings: zsky }),
  };
}
