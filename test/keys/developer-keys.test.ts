import { describe, expect, it } from "vitest";
import { admin, bearer, call, json, login, newUser } from "../helpers";

const KEYS = "/zakgt/api/v1/developer/api-keys";
const jsonHeaders = { "Content-Type": "application/json" };

async function createOwnKey(token: string, body: unknown = {}) {
  return call(KEYS, { method: "POST", headers: { ...bearer(token), ...jsonHeaders }, body: JSON.stringify(body) });
}

describe("ZakGT personal access keys", () => {
  it("creates a key (201), shows the secret once, lists it by prefix + last 4 + status", async () => {
    const token = await login();
    const created = await createOwnKey(token, { label: "my script", scopes: ["ai"] });
    expect(created.status).toBe(201);
    const body = await json(created);
    expect(body.status).toBe("ok");
    expect(body.request_id).toBe(created.headers.get("X-Request-Id"));
    const { key, id } = body.data;
    expect(key).toMatch(/^zak_live_[0-9A-Za-z]{36}$/);
    expect(body.data).toMatchObject({ label: "my script", prefix: "zak_live_", last4: key.slice(-4), status: "active", scopes: ["ai"] });

    const list = await call(KEYS, { headers: bearer(token) });
    expect(list.status).toBe(200);
    const listed = (await json(list)).data.keys.find((k: { id: string }) => k.id === id);
    expect(listed).toMatchObject({ id, prefix: "zak_live_", last4: key.slice(-4), status: "active" });
    expect(JSON.stringify(await json(await call(KEYS, { headers: bearer(token) })))).not.toContain(key);
  });

  it("the key calls ZakGT as its owner", async () => {
    const token = await login("other@zakgt.test", "other-password");
    const { key } = (await json(await createOwnKey(token))).data;
    const me = await call("/zakgt/api/v1/users/me", { headers: bearer(key) });
    expect((await json(me)).data.id).toBe("usr_other");
  });

  it("refuses bad input with 422 naming the field, in ZakGT's envelope", async () => {
    const token = await login();
    const cases: [unknown, string][] = [
      [{ label: "" }, "label: "],
      [{ label: "x".repeat(101) }, "label: "],
      [{ scopes: [] }, "scopes: "],
      [{ scopes: ["wallet!"] }, "scopes.0: "],
      [{ expires_at: "soon" }, "expires_at: "],
      [{ expires_at: "2000-01-01T00:00:00Z" }, "expires_at: must be in the future"],
      [{ owner: "usr_other" }, "owner: unknown field"],
      [[1, 2], "body: "],
    ];
    for (const [body, start] of cases) {
      const response = await createOwnKey(token, body);
      expect(response.status, JSON.stringify(body)).toBe(422);
      expect((await json(response)).detail.startsWith(start)).toBe(true);
    }
    expect((await call(KEYS, { method: "POST", headers: { ...bearer(token), "Content-Type": "text/plain" }, body: "{}" })).status).toBe(
      415,
    );
    expect((await call(KEYS, { method: "POST", headers: { ...bearer(token), ...jsonHeaders }, body: "{" })).status).toBe(400);
    expect((await call(KEYS)).status).toBe(401);
  });

  it("DELETE revokes your own key at once; another user's key is a 404", async () => {
    const demo = await login();
    const other = await login("other@zakgt.test", "other-password");
    const mine = (await json(await createOwnKey(demo))).data;
    const theirs = (await json(await createOwnKey(other))).data;

    const denied = await call(`${KEYS}/${theirs.id}`, { method: "DELETE", headers: bearer(demo) });
    expect(denied.status).toBe(404);
    expect(await json(denied)).toEqual({ detail: "API key not found" });
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(theirs.key) })).status).toBe(200);
    expect((await call(`${KEYS}/key_nope`, { method: "DELETE", headers: bearer(demo) })).status).toBe(404);

    const revoked = await call(`${KEYS}/${mine.id}`, { method: "DELETE", headers: bearer(demo) });
    expect(revoked.status).toBe(200);
    expect((await json(revoked)).data).toEqual({ id: mine.id, status: "revoked" });
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(mine.key) })).status).toBe(401);
    const listed = (await json(await call(KEYS, { headers: bearer(demo) }))).data.keys.find((k: { id: string }) => k.id === mine.id);
    expect(listed.status).toBe("revoked");

    const audit = await json(await admin(`/audit?target=${mine.id}`));
    expect(audit.entries.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
      ["key.revoke", "user:usr_demo"],
      ["key.create", "user:usr_demo"],
    ]);
  });

  it("GET usage lists each call of the key (time, method, path, status, request id), paginated", async () => {
    const token = await login();
    const { id, key } = (await json(await createOwnKey(token))).data;
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(`/zakgt/api/v1/users/me?secret=${i}`, { headers: { ...bearer(key), "X-Request-Id": `usage-call-000${i}` } });
      ids.push(r.headers.get("X-Request-Id"));
    }
    await call("/zakgt/api/v1/tools/tool_missing", { headers: bearer(key) });

    const first = await call(`${KEYS}/${id}/usage?limit=2`, { headers: bearer(token) });
    expect(first.status).toBe(200);
    const page1 = (await json(first)).data;
    expect(page1.items).toHaveLength(2);
    expect(page1.items[0]).toMatchObject({ method: "GET", path: "/api/v1/tools/tool_missing", status: 404 });
    expect(page1.items[1]).toMatchObject({ method: "GET", path: "/api/v1/users/me", status: 200, request_id: "usage-call-0002" });
    expect(Date.parse(page1.items[0].time)).toBeGreaterThan(Date.now() - 60_000);
    const page2 = (await json(await call(`${KEYS}/${id}/usage?limit=2&cursor=${page1.next_cursor}`, { headers: bearer(token) }))).data;
    expect(page2.items.map((u: { request_id: string }) => u.request_id)).toEqual(["usage-call-0001", "usage-call-0000"]);
    expect(page2.next_cursor).toBeNull();
    // Query strings are never stored.
    expect(JSON.stringify([page1, page2])).not.toContain("secret=");

    const other = await login("other@zakgt.test", "other-password");
    expect((await call(`${KEYS}/${id}/usage`, { headers: bearer(other) })).status).toBe(404);
    expect((await call(`${KEYS}/${id}/usage?limit=500`, { headers: bearer(token) })).status).toBe(422);
    expect((await call(`${KEYS}/${id}/usage?cursor=%%%`, { headers: bearer(token) })).status).toBe(400);
  });

  it("a burst of calls is recorded in full: every call once", async () => {
    const token = await login();
    const { id, key } = (await json(await createOwnKey(token))).data;
    const sent = Array.from({ length: 40 }, (_, i) => `usage-burst-${String(i).padStart(4, "0")}`);
    await Promise.all(sent.map((requestId) => call("/zakgt/api/v1/users/me", { headers: { ...bearer(key), "X-Request-Id": requestId } })));
    const listed = (await json(await call(`${KEYS}/${id}/usage?limit=100`, { headers: bearer(token) }))).data;
    expect(listed.items.map((u: { request_id: string }) => u.request_id).sort()).toEqual(sent);
  });
});

describe("account deactivation", () => {
  it("DELETE /users/me that succeeds at the origin revokes all the user's keys and sessions", async () => {
    const user = await newUser();
    const token = await user.login();
    const other = await user.login();
    const { key } = (await json(await createOwnKey(token))).data;
    const gone = await call("/zakgt/api/v1/users/me", { method: "DELETE", headers: bearer(token) });
    expect(gone.status).toBe(200);
    for (const credential of [token, other, key]) {
      expect((await call("/zakgt/api/v1/users/me", { headers: bearer(credential) })).status).toBe(401);
    }
    const audit = await json(await admin(`/audit?action=user.revoke_all&target=${user.userId}`));
    expect(audit.entries[0].actor).toBe(`user:${user.userId}`);
  });

  it("a refused deactivation revokes nothing", async () => {
    const token = await (await newUser()).login();
    const refused = await call("/zakgt/api/v1/users/me", { method: "DELETE", headers: { ...bearer(token), "X-Sim-Fail": "409" } });
    expect(refused.status).toBe(409);
    expect((await call("/zakgt/api/v1/users/me", { headers: bearer(token) })).status).toBe(200);
  });
});
