import { describe, expect, it } from "vitest";
import { bearer, call, json, login } from "./helpers";

// Each test reads a URL of its own (a unique query) so cache entries never collide.
const unique = () => `q=${crypto.randomUUID()}`;

describe("edge cache for catalogue reads", () => {
  it("serves the second read of the tool list from the edge (origin's public max-age)", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/?${unique()}`;
    const first = await call(path, { headers: bearer(token) });
    expect(first.status).toBe(200);
    expect(first.headers.get("Cache-Control")).toBe("public, max-age=60");
    const served = (await json(first)).data.served;

    const second = await call(path, { headers: bearer(await login("other@zakgt.test", "other-password")) });
    expect(second.status).toBe(200);
    expect((await json(second)).data.served).toBe(served);
    // The origin's own Cache-Control goes back out unchanged.
    expect(second.headers.get("Cache-Control")).toBe("public, max-age=60");
    expect(second.headers.get("X-Zgate-Origin-Cache-Control")).toBeNull();
  });

  it("caches a product read that has no Cache-Control for the configured TTL", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
    const first = await json(await call(path, { headers: bearer(token) }));
    const second = await call(path, { headers: bearer(token) });
    expect((await json(second)).data.served).toBe(first.data.served);
    expect(second.headers.get("Cache-Control")).toBeNull();
  });

  it("does not cache when the configured TTL is 0 and the origin says nothing", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/mart/products?${unique()}`;
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
    const other = await call("/zakgt/api/v1/tools/my-tools", { headers: bearer(await login("other@zakgt.test", "other-password")) });
    expect((await json(other)).data.user).toBe("usr_other");
  });

  it("does not cache errors", async () => {
    const token = await login();
    const path = `/zakgt/api/v1/tools/tool_missing?${unique()}`;
    expect((await call(path, { headers: bearer(token) })).status).toBe(404);
    const again = await call(path, { headers: { ...bearer(token), "X-Sim-Echo": "1" } });
    expect(again.status).toBe(200); // reached the origin again
  });
});
