import { describe, expect, it } from "vitest";
import { Lru } from "../../src/util/lru";

// The bound on every per-isolate cache (key owners, lease book subjects, verified tokens):
// a flood of distinct entries must evict the least recently used, whoever was asked last.
describe("Lru", () => {
  it("evicts the least recently used entry, a hot key asked again and again included", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    // Asked twice in a row: the second is already the newest.
    expect(lru.get("b")).toBe(2);
    expect(lru.get("b")).toBe(2);
    // Asking for "a" makes it the newest, so "b" is the oldest now.
    expect(lru.get("a")).toBe(1);
    expect(lru.get("a")).toBe(1);
    lru.set("c", 3);
    expect([...lru.keys()]).toEqual(["a", "c"]);
  });

  it("keeps order right after the newest entry is deleted or the map cleared", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.delete("b");
    lru.set("b", 2);
    expect(lru.get("a")).toBe(1);
    lru.set("c", 3);
    expect([...lru.keys()]).toEqual(["a", "c"]);
    lru.clear();
    lru.set("x", 1);
    lru.set("y", 2);
    expect(lru.get("x")).toBe(1);
    lru.set("z", 3);
    expect([...lru.keys()]).toEqual(["x", "z"]);
  });

  it("never holds more than its capacity", () => {
    const lru = new Lru<number, number>(100);
    for (let i = 0; i < 1_000; i++) {
      lru.set(i, i);
      lru.get(i);
      lru.get(i >> 1);
    }
    expect(lru.size).toBe(100);
    expect(lru.has(999)).toBe(true);
  });
});
