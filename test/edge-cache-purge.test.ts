import { describe, expect, it } from "vitest";
import { bearer, call, json, login } from "./helpers";

/** Writes to a marketplace listing purge the cached reads of that listing and of the list. */
const products = "/zakgt/api/v1/mart/products";

async function write(token: string, method: string, path: string, body?: unknown) {
  const response = await call(path, {
    method,
    headers: { ...bearer(token), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await json(response) };
}

/** Reads `path` twice and checks the second read came from the edge; returns the first body. */
async function cached(token: string, path: string) {
  const first = await json(await call(path, { headers: bearer(token) }));
  const second = await json(await call(path, { headers: bearer(token) }));
  expect(second.data.served, `${path} is served from the edge`).toBe(first.data.served);
  return first;
}

/** A listing of this test's own, with its item read and a list read already in the cache. */
async function cachedListing(token: string) {
  const created = await write(token, "POST", products, { title: "Preset", price_coins: 10 });
  expect(created.status).toBe(201);
  const id: string = created.body.data.id;
  const list = `${products}?q=${crypto.randomUUID()}`;
  const item = await cached(token, `${products}/${id}`);
  const listed = await cached(token, list);
  return { id, item: `${products}/${id}`, list, served: { item: item.data.served, list: listed.data.served } };
}

const titles = (listBody: any) => listBody.data.products.map((p: { id: string; title: string }) => [p.id, p.title]);

describe("catalogue writes purge the edge cache", () => {
  it("DELETE of a product: the next reads of the product and of the list reach the origin", async () => {
    const token = await login();
    const listing = await cachedListing(token);
    expect((await write(token, "DELETE", listing.item)).status).toBe(200);

    expect((await call(listing.item, { headers: bearer(token) })).status).toBe(404);
    const list = await json(await call(listing.list, { headers: bearer(token) }));
    expect(list.data.served).not.toBe(listing.served.list);
    expect(titles(list).map(([id]: string[]) => id)).not.toContain(listing.id);
  });

  it("PUT of a product: the next reads show the update", async () => {
    const token = await login();
    const listing = await cachedListing(token);
    expect((await write(token, "PUT", listing.item, { title: "Renamed" })).status).toBe(200);

    const item = await json(await call(listing.item, { headers: bearer(token) }));
    expect(item.data.title).toBe("Renamed");
    const list = await json(await call(listing.list, { headers: bearer(token) }));
    expect(titles(list)).toContainEqual([listing.id, "Renamed"]);
  });

  it("POST of a product: the next read of the list shows it", async () => {
    const token = await login();
    const listing = await cachedListing(token);
    const created = await write(token, "POST", products, { title: "Another", price_coins: 5 });

    const list = await json(await call(listing.list, { headers: bearer(token) }));
    expect(titles(list)).toContainEqual([created.body.data.id, "Another"]);
    // The other listing was not written: its read is still the cached one.
    expect((await json(await call(listing.item, { headers: bearer(token) }))).data.served).toBe(listing.served.item);
  });

  it("a refused write purges nothing", async () => {
    const token = await login();
    const listing = await cachedListing(token);
    expect((await write(token, "PUT", `${products}/prod_missing`, { title: "x" })).status).toBe(404);
    expect((await json(await call(listing.list, { headers: bearer(token) }))).data.served).toBe(listing.served.list);
  });
});
