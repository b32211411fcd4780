import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { afterDrain, useTestClock, type TestClock } from "../clock";
import { admin, bearer, callLive, createKey, json, keyHeaders, limitOverrides, newUser } from "../helpers";

/**
 * Instant revocation with a live lease: every guard change that must refuse a
 * credential's next request waits for that credential's leases to end
 * (`this.leases.drained(...)` in account-guard.ts). Here an isolate holds a live lease
 * of the credential when the change is made: on the test clock (test/clock.ts) the lease
 * lives until the clock passes its end, so the change must be seen waiting for it, and
 * return when the clock gets there (afterDrain). The credential's next request, sent the
 * moment the change's response is complete, must be refused. Without the drain the
 * change returns at once, while the isolate would still admit that request from its
 * lease: each drain, removed alone, fails a test here. Requests go through callLive,
 * which returns with the response, as a client does.
 */

// The longest lease life.
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
 * Sends `request` twice: a route called twice within a lease life is hot, and the second
 * call is granted a lease with a token to spare. (A change made with no lease out returns
 * at once, which afterDrain refuses: no test here passes for want of a lease.)
 */
async function makeHot(request: () => Promise<Response>): Promise<void> {
  for (let i = 0; i < 2; i++) expect((await request()).status).toBe(200);
}

// The one drain on the system clock: the lease's life passes in real time.
describe("a drain in real time", () => {
  it("admin revoke: the key's next request is refused (revokeKey)", async () => {
    const { id, key } = await createKey("zappway", { plan: "pro" });
    const agents = () => callLive("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: zappway });
    await makeHot(agents);
    expect((await admin(`/keys/${id}/revoke`, { method: "POST", live: true })).status).toBe(200);
    expect((await agents()).status).toBe(401);
  });
});

describe("on the test clock", () => {
  let clock: TestClock;
  beforeEach(() => {
    clock = useTestClock();
  });
  /** `change` made with a lease out: it must wait for the lease, and returns when the clock reaches the lease's end. */
  const drained = (change: () => Promise<Response>) => afterDrain(clock, change);

  describe("keys: revoked, limited, rotated, with a lease out", () => {
    const agents = (key: string) => () => callLive("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key), settings: zappway });

    it("admin revoke: the key's next request is refused (revokeKey)", async () => {
      const { id, key } = await createKey("zappway", { plan: "pro" });
      await makeHot(agents(key));
      expect((await drained(() => admin(`/keys/${id}/revoke`, { method: "POST", live: true }))).status).toBe(200);
      expect((await agents(key)()).status).toBe(401);
    });

    it("ZakGT developer-keys DELETE: the key's next request is refused (revokeKey)", async () => {
      const user = await newUser();
      const session = await user.login();
      const { id, key } = await ownKey(session);
      const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings: zakgt });
      await makeHot(me);
      const deleted = await drained(() =>
        callLive(`/zakgt/api/v1/developer/api-keys/${id}`, { method: "DELETE", headers: bearer(session), settings: zakgt }),
      );
      expect(deleted.status).toBe(200);
      expect((await me()).status).toBe(401);
    });

    it("a key's limit lowered: its next request is counted under it (setKeyLimits)", async () => {
      const { id, key } = await createKey("zappway", { plan: "pro" });
      await makeHot(agents(key));
      const lowered = await drained(() =>
        admin(`/keys/${id}`, { method: "PATCH", json: { limit_override: { windows: { plan_rate: { limit: 1 } } } }, live: true }),
      );
      expect(lowered.status).toBe(200);
      expect((await agents(key)()).status).toBe(429);
    });

    it("an account's plan lowered: its keys' next request is counted under it (setAccountPlan)", async () => {
      const { key, account } = await createKey("zappway", { plan: "pro" });
      await makeHot(agents(key));
      const body = { plan: "pro", limit_override: { windows: { plan_rate: { limit: 1 } } } };
      const lowered = await drained(() =>
        admin(`/accounts/zappway/${account}/plan`, { method: "PUT", json: body, settings: zappway, live: true }),
      );
      expect(lowered.status).toBe(200);
      expect((await agents(key)()).status).toBe(429);
    });

    it("ZSky rotate: the old key's next request is refused (rotateKey)", async () => {
      const { key } = await createKey("zsky");
      const api = zskyApi(key);
      const jobId = await api.submit("a lighthouse render-ms:600000");
      await makeHot(() => api.poll(jobId));
      const rotated = await drained(() =>
        callLive("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", key), settings: zsky }),
      );
      expect(rotated.status).toBe(200);
      expect((await api.poll(jobId)).status).toBe(401);
      expect((await zskyApi((await json(rotated)).key).poll(jobId)).status).toBe(200);
    });

    it("ZSky rotate whose wait a guard restart cut short: its retry waits for the lease (rotateKey, repeated)", async () => {
      const { key, account } = await createKey("zsky");
      const api = zskyApi(key);
      const jobId = await api.submit("a lighthouse render-ms:600000");
      await makeHot(() => api.poll(jobId));
      // The restart comes once the swap is made, while the rotation waits for the lease.
      const draining = clock.nextSleep();
      const rotating = callLive("/zsky/v1/keys/rotate", { method: "POST", headers: keyHeaders("zsky", key), settings: zsky });
      await draining;
      const retried = clock.nextSleep();
      await expect(runInDurableObject(guardOf("zsky", account), (_object, state) => state.abort("deploy"))).rejects.toThrow("deploy");
      // Repeated on a new instance, it waits again: for every lease the old one may have granted.
      const retryEnds = await Promise.race([retried, rotating.then(() => "returned without waiting")]);
      expect(typeof retryEnds).toBe("number");
      await clock.advanceTo(retryEnds as number);
      expect((await rotating).status).toBe(200);
      expect((await api.poll(jobId)).status).toBe(401);
    });
  });

  describe("sessions: logged out and revoked, with a lease out", () => {
    it("logout: the token's next request is refused (revokeToken)", async () => {
      const user = await newUser();
      const token = await user.login();
      const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(token), settings: zakgt });
      await makeHot(me);
      expect(
        (await drained(() => callLive("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token), settings: zakgt }))).status,
      ).toBe(200);
      expect((await me()).status).toBe(401);
    });

    it("admin revoke-sessions: the user's token's next request is refused (revokeSessions)", async () => {
      const user = await newUser();
      const token = await user.login();
      const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(token), settings: zakgt });
      await makeHot(me);
      expect((await drained(() => admin(`/users/${user.userId}/revoke-sessions`, { json: {}, live: true }))).status).toBe(200);
      expect((await me()).status).toBe(401);
    });

    it("admin revoke-sessions with its keys: the user's key's next request is refused (revokeAllKeys)", async () => {
      const user = await newUser();
      const session = await user.login();
      const { key } = await ownKey(session);
      const me = () => callLive("/zakgt/api/v1/users/me", { headers: bearer(key), settings: zakgt });
      await makeHot(me);
      const revoked = await drained(() => admin(`/users/${user.userId}/revoke-sessions`, { json: { revoke_keys: true }, live: true }));
      expect((await json(revoked)).keys_revoked).toHaveLength(1);
      expect((await me()).status).toBe(401);
    });
  });

  describe("ZSky jobs: suspended and purged, with a lease out", () => {
    it("a submission blocked at submit that suspends the key: its next poll is refused (settleGeneration)", async () => {
      const { key } = await createKey("zsky");
      const api = zskyApi(key);
      const jobId = await api.submit("a lighthouse render-ms:600000");
      // 9 attempts, 5 blocked: one more blocked makes 6 of 10, over half (ZSky's rule).
      for (let i = 0; i < 3; i++) await api.submit(`fine ${i} render-ms:600000`);
      for (let i = 0; i < 5; i++) expect((await api.generate("blocked-at-submit")).status).toBe(451);
      await makeHot(() => api.poll(jobId));
      expect((await drained(() => api.generate("blocked-at-submit"))).status).toBe(451);
      expect((await api.poll(jobId)).status).toBe(403);
    });

    it("a poll that finds a job blocked and suspends the key: the key's next poll is refused (finishJob)", async () => {
      const { key } = await createKey("zsky");
      const api = zskyApi(key);
      const jobId = await api.submit("a lighthouse render-ms:600000");
      // Ends `blocked` the moment it is polled: the 6th rejection of 10 attempts.
      const blocked = await api.submit("forbidden render-ms:0");
      for (let i = 0; i < 5; i++) expect((await api.generate("blocked-at-submit")).status).toBe(451);
      for (let i = 0; i < 3; i++) await api.submit(`fine ${i} render-ms:600000`);
      await makeHot(() => api.poll(jobId));
      expect(await json(await drained(() => api.poll(blocked)))).toMatchObject({ job_id: blocked, status: "blocked" });
      expect((await api.poll(jobId)).status).toBe(403);
    });

    it("a suspension of a roll's successor: the grace key's next poll is refused (settleGeneration, the chain)", async () => {
      const { id, key } = await createKey("zsky");
      const graceKey = zskyApi(key);
      const jobId = await graceKey.submit("a lighthouse render-ms:600000");
      const successor = zskyApi((await json(await admin(`/keys/${id}/roll`, { json: { expire_old_in_seconds: 3600 }, live: true }))).key);
      // 9 attempts of the chain, 5 blocked: one more blocked makes 6 of 10.
      for (let i = 0; i < 3; i++) await successor.submit(`fine ${i} render-ms:600000`);
      for (let i = 0; i < 5; i++) expect((await successor.generate("blocked-at-submit")).status).toBe(451);
      await makeHot(() => graceKey.poll(jobId));
      expect((await drained(() => successor.generate("blocked-at-submit"))).status).toBe(451);
      expect((await graceKey.poll(jobId)).status).toBe(403);
    });

    it("purge: the job's next poll is refused at the edge, never reaching the origin (purgeJobs)", async () => {
      const { key } = await createKey("zsky");
      const api = zskyApi(key);
      const jobId = await api.submit("a lighthouse render-ms:600000");
      await makeHot(() => api.poll(jobId));
      const purged = await drained(() =>
        callLive(`/zsky/v1/jobs/${jobId}`, { method: "DELETE", headers: keyHeaders("zsky", key), settings: zsky }),
      );
      expect(purged.status).toBe(204);
      // The origin has forgotten the job too, so its own 404 would look the same: a poll
      // that reaches it is answered by its echo hook (200) instead.
      expect((await api.poll(jobId, { "X-Sim-Echo": "1" })).status).toBe(404);
    });
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
