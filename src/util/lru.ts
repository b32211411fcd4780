/**
 * A small least-recently-used map for per-isolate caches of facts that never change
 * (a key hash's owner, a verified token's claims). Bounded, so a flood of distinct
 * credentials cannot grow an isolate's memory without limit. A Map, so a library that
 * takes one for its cache (Upstash's refusal cache) is bounded the same way.
 */
export class Lru<K, V> extends Map<K, V> {
  /**
   * The key used last: asked again, it is already the newest and is not moved. A hot key's
   * requests ask for it again and again (its owner, its lease book entry), each a move otherwise.
   */
  #newest: K | undefined;

  constructor(private readonly capacity: number) {
    super();
  }

  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value !== undefined && key !== this.#newest) {
      super.delete(key);
      super.set(key, value);
      this.#newest = key;
    }
    return value;
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    this.#newest = key;
    if (this.size > this.capacity) super.delete(this.keys().next().value as K);
    return this;
  }

  override delete(key: K): boolean {
    if (key === this.#newest) this.#newest = undefined;
    return super.delete(key);
  }

  override clear(): void {
    this.#newest = undefined;
    super.clear();
  }
}
