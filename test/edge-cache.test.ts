import { describe, expect, it } from "vitest";
import { bearer, call, json, login } from "./helpers";

// Each test reads a URL of its own (a unique query) so cache entries never collide.
const unique = () => `q=${crypto.randomUUID()}`;
const other = () => login("other@zakgt.test", "other-password");
// The simulator's test hook for the caching fields of a catalogue answer.
const cacheHeaders = (fields: Record<string, string>) => ({ "X-Sim-Cache-Headers": JSON.stringify(fields) });

describe("edge cache for catalogue reads", () => {
  it("serves the second read of the tool list from the edge (origin's public max-age)", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/?${unique()}`;
    const first = await call(path, { headers: bearer(token) });
    expect(first.status).toBe(200);
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=60");
    const served = (await json(first)).data.served;

    const second = await call(path, { headers: bearer(await other()) });
    expect(second.status).toBe(200);
    expect((await json(second)).data.served).toBe(served);
    // The origin's own Cache-Control goes back out unchanged.
    expect(second.headers.get("Cache-Control")).toBe("public, max-age=60");
    expect(second.headers.get("X-Zgate-Origin-Cache-Control")).toBeNull();
  });

  it("a hit carries the caller's own request id, never the one of the request that filled the entry", async () => {
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    await call(path, { headers: { ...bearer(await other()), "X-Request-Id": "filler-0001" } });
    const hit = await call(path, { headers: { ...bearer(await login()), "X-Request-Id": "reader-0001" } });
    expect(hit.headers.get("X-Request-Id")).toBe("reader-0001");
    expect(await hit.text()).not.toContain("filler-0001");
  });

  it("user A never receives user B's answer when the origin answers per caller", async () => {
    const path = `/zakgt/api/v1/mart/products?sort=new&${unique()}`;
    const b = await call(path, { headers: { ...bearer(await other()), "X-Sim-Per-Caller": "1", "X-Request-Id": "user-b-0001" } });
    expect((await json(b)).data.viewer).toBe("usr_other");

    const a = await call(path, { headers: { ...bearer(await login()), "X-Sim-Per-Caller": "1", "X-Request-Id": "user-a-0001" } });
    const body = await json(a);
    expect(body.data.viewer).toBe("usr_demo");
    expect(body.request_id).toBe("user-a-0001");
    expect(JSON.stringify(body)).not.toContain("user-b-0001");
  });

  it("never stores an answer that echoes its request's id, even one the origin marks public", async () => {
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    const perCaller = { "X-Sim-Per-Caller": "1", ...cacheHeaders({ "Cache-Control": "public, max-age=60" }) };
    await call(path, { headers: { ...bearer(await other()), ...perCaller, "X-Request-Id": "user-b-0002" } });
    const a = await call(path, { headers: { ...bearer(await login()), "X-Request-Id": "user-a-0002" } });
    const text = await a.text();
    expect(text).not.toContain("user-b-0002");
    expect(text).not.toContain("usr_other");
  });

  it("does not cache a catalogue answer the origin does not mark public", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    const unmarked = { headers: { ...bearer(token), ...cacheHeaders({}) } };
    const first = await json(await call(path, unmarked));
    const second = await json(await call(path, unmarked));
    expect(second.data.served).not.toBe(first.data.served);
  });

  it.each([
    ["public without a lifetime", { "Cache-Control": "public" }],
    ["public, max-age=0", { "Cache-Control": "public, max-age=0" }],
    ["private", { "Cache-Control": "public, private, max-age=60" }],
    ["no-store", { "Cache-Control": "public, no-store, max-age=60" }],
    ["no-cache", { "Cache-Control": "public, no-cache, max-age=60" }],
    ["Set-Cookie", { "Cache-Control": "public, max-age=60", "Set-Cookie": "session=abc" }],
    ["Vary: *", { "Cache-Control": "public, max-age=60", Vary: "*" }],
    ["Vary: Authorization", { "Cache-Control": "public, max-age=60", Vary: "Authorization" }],
  ])("does not cache an answer marked %s", async (_, fields) => {
    const token = await login();
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    const init = { headers: { ...bearer(token), ...cacheHeaders(fields) } };
    const first = await json(await call(path, init));
    const second = await json(await call(path, init));
    expect(second.data.served).not.toBe(first.data.served);
  });

  it("caches an answer marked public with an s-maxage", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    const init = { headers: { ...bearer(token), ...cacheHeaders({ "Cache-Control": "public, s-maxage=60" }) } };
    const first = await json(await call(path, init));
    const second = await json(await call(path, init));
    expect(second.data.served).toBe(first.data.served);
  });

  it("EDGE_CACHE_TTL_SECONDS caps the origin's lifetime: 0 keeps nothing, even a public answer", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/?${unique()}`;
    const settings = { EDGE_CACHE_TTL_SECONDS: "0" };
    const first = await json(await call(path, { headers: bearer(token), settings }));
    const second = await json(await call(path, { headers: bearer(token), settings }));
    expect(second.data.served).not.toBe(first.data.served);
  });

  it("keys by URL: another query string is another entry", async () => {
    const token = await login();
    const a = await json(await call(`/zakgt/api/v1/mart/products?${unique()}`, { headers: bearer(token) }));
    const b = await json(await call(`/zakgt/api/v1/mart/products?${unique()}`, { headers: bearer(token) }));
    expect(b.data.served).not.toBe(a.data.served);
  });

  it("still authenticates every request before the cache is consulted", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/tool_writer?${unique()}`;
    expect((await call(path, { headers: bearer(token) })).status).toBe(200);
    const anonymous = await call(path);
    expect(anonymous.status).toBe(401);
    expect(await json(anonymous)).toEqual({ detail: "Not authenticated" });
    await call("/zakgt/api/v1/auth/logout", { method: "POST", headers: bearer(token) });
    expect((await call(path, { headers: bearer(token) })).status).toBe(401);
  });

  it("never caches a per-caller response (my-tools is private)", async () => {
    const demo = await call("/zakgt/api/v1/tools/my-tools", { headers: bearer(await login()) });
    expect((await json(demo)).data.user).toBe("usr_demo");
    const otherUser = await call("/zakgt/api/v1/tools/my-tools", { headers: bearer(await other()) });
    expect((await json(otherUser)).data.user).toBe("usr_other");
  });

  it("does not cache errors", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/tool_missing?${unique()}`;
    expect((await call(path, { headers: bearer(token) })).status).toBe(404);
    const again = await call(path, { headers: { ...bearer(token), "X-Sim-Echo": "1" } });
    expect(again.status).toBe(200); // reached the origin again
  });
});
