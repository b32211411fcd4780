/**
 * A small least-recently-used map for per-isolate caches of facts that never change
 * (a key hash's owner, a verified token's claims). Bounded, so a flood of distinct
 * credentials cannot grow an isolate's memory without limit. A Map, so a library that
 * takes one for its cache (Upstash's refusal cache) is bounded the same way.
 */
export class Lru<K, V> extends Map<K, V> {
  constructor(private readonly capacity: number) {
    super();
  }

  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value !== undefined) {
      super.delete(key);
      super.set(key, value);
    }
    return value;
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    if (this.size > this.capacity) super.delete(this.keys().next().value as K);
    return this;
  }
}
