/** A Map or a WeakMap: what `madeOnce` keeps values in. */
interface Kept<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): unknown;
}

/**
 * The value kept under `key`, made by `make` the first time it is asked for: the
 * per-isolate caches of things made from parsed settings and shared, never changed
 * (a WeakMap keyed by the settings object lets them go with it). On a request's path,
 * `kept.get(key) ?? madeOnce(kept, key, () => ...)`: the factory, a closure and so an
 * allocation, is then made only when nothing is kept yet.
 */
export function madeOnce<K, V>(kept: Kept<K, V>, key: K, make: () => V): V {
  let value = kept.get(key);
  if (value === undefined) {
    value = make();
    kept.set(key, value);
  }
  return value;
}
