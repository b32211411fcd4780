import { describe, expect, it } from "vitest";
import { admin, bearer, call, createKey, json, keyHeaders, newUser, race } from "../helpers";

describe("instant revocation under concurrency", () => {
  it("admin revoke of a ZSky key: zero admitted after it returns", async () => {
    const { id, key } = await createKey("zsky");
    const results = await race(
      () => call("/zsky/v1/jobs/nope", { headers: keyHeaders("zsky", key) }),
      () => admin(`/keys/${id}/revoke`, { method: "POST" }),
    );
    const after = results.filter((r) => r.startedAfterRevoke);
    expect(after.length).toBeGreaterThanOrEqual(50);
    expect(after.filter((r) => r.status !== 401)).toEqual([]);
    // Before the revoke, the key was admitted (the origin answered 404 for the made-up job).
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 404)).toBe(true);
  });

  it("revoke-leaked of a ZappWay key", async () => {
    const { key } = await createKey("zappway");
    const results = await race(
      () => call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) }),
      () => admin("/keys/revoke-leaked", { json: { key } }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
  });

  it("logout of a ZakGT session", async () => {
    const token = await (await newUser()).login();
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(token) }),
      () => call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
    expect(results.some((r) => !r.startedAfterRevoke && r.status === 200)).toBe(true);
  });

  it("revoking all of a user's sessions", async () => {
    const user = await newUser();
    const tokens = [await user.login(), await user.login()];
    let n = 0;
    const results = await race(
      () => call("/zakgt/api/v1/users/me", { headers: bearer(tokens[n++ % 2]!) }),
      () => admin(`/users/${user.userId}/revoke-sessions`, { json: {} }),
    );
    expect(results.filter((r) => r.startedAfterRevoke && r.status !== 401)).toEqual([]);
  });

  it("a warm KV entry cannot keep a revoked key alive", async () => {
    const { id, key } = await createKey("zappway");
    // Warm every cache on the path.
    for (let i = 0; i < 3; i++) expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(200);
    await admin(`/keys/${id}/revoke`, { method: "POST" });
    expect((await call("/zappway/api/v1/agents", { headers: keyHeaders("zappway", key) })).status).toBe(401);
    expect((await json(await admin(`/keys/${id}`))).status).toBe("revoked");
  });
});
