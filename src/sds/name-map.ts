/**
 * A map of a stream's names that keeps its first entry inline. Envoy opens one stream per
 * secret, so nearly every stream holds one name, and a Map with its hash table costs
 * about 350 bytes where two fields cost 16. A second name moves both into a Map.
 */
export class NameMap<V> implements Iterable<[string, V]> {
  private key: string | undefined;
  private value: V | undefined;
  private map: Map<string, V> | undefined;

  get size(): number {
    return this.map ? this.map.size : this.key === undefined ? 0 : 1;
  }

  get(key: string): V | undefined {
    if (this.map) return this.map.get(key);
    return key === this.key ? this.value : undefined;
  }

  has(key: string): boolean {
    return this.map ? this.map.has(key) : key === this.key;
  }

  set(key: string, value: V): this {
    if (this.map) {
      this.map.set(key, value);
    } else if (this.key === undefined || this.key === key) {
      this.key = key;
      this.value = value;
    } else {
      this.map = new Map([[this.key, this.value as V]]).set(key, value);
      this.key = this.value = undefined;
    }
    return this;
  }

  delete(key: string): boolean {
    if (this.map) return this.map.delete(key);
    if (key !== this.key) return false;
    this.key = this.value = undefined;
    return true;
  }

  clear(): void {
    this.map = undefined;
    this.key = this.value = undefined;
  }

  *keys(): IterableIterator<string> {
    if (this.map) yield* this.map.keys();
    else if (this.key !== undefined) yield this.key;
  }

  *entries(): IterableIterator<[string, V]> {
    if (this.map) yield* this.map.entries();
    else if (this.key !== undefined) yield [this.key, this.value as V];
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }
}
