/**
 * A bounded map that evicts the least recently used entry. A Map keeps
 * insertion order, so "use" is delete-and-set and the oldest entry is the
 * first key. Twenty lines of our own rather than a dependency on the
 * authentication path: no transitive code there to audit, and the callers
 * keep their own expiry times in the values.
 *
 * @example
 * const lru = new Lru<string, number>(2);
 * lru.set('a', 1); lru.set('b', 2); lru.get('a'); lru.set('c', 3); // evicts 'b'
 */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();

  constructor(readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.capacity) this.#map.delete(this.#map.keys().next().value as K);
  }

  delete(key: K): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
