/**
 * The calls of one caller in flight, by id: entries that come and go tens of
 * thousands of times a second, each living about a round trip.
 *
 * Kept in a null-prototype object, not a `Map`: V8 replaces a Map's hash
 * table when deletions fill it (every few dozen calls here), and a replaced
 * table keeps its entries and a link to its successor (for iterators). Once
 * one replaced table has reached the old generation, each younger successor,
 * and every call it still names, is kept through every scavenge by that
 * link, until a full collection: nearly every call was promoted, and freed
 * by frequent mark-compacts (docs/benchmarks.md measures it). An object's
 * dictionary, when it grows or shrinks, leaves nothing pointing at the new
 * one. Keys are own properties only (`__proto__`, `constructor` or
 * `toString` name nothing unless set).
 */
export class CallTable<V> {
  private readonly entries = Object.create(null) as Record<string, V | undefined>;
  private count = 0;

  /** How many entries the table holds. */
  get size(): number {
    return this.count;
  }

  /** The entry of `key`, or undefined. */
  get(key: string): V | undefined {
    return this.entries[key];
  }

  /** Sets the entry of `key` (`value` is never undefined). */
  set(key: string, value: V): void {
    if (this.entries[key] === undefined) this.count += 1;
    this.entries[key] = value;
  }

  /** Removes the entry of `key`; whether there was one. */
  delete(key: string): boolean {
    if (this.entries[key] === undefined) return false;
    delete this.entries[key];
    this.count -= 1;
    return true;
  }

  /** Every entry, in a new array (safe to change the table while walking it). */
  values(): V[] {
    const values: V[] = [];
    for (const key in this.entries) values.push(this.entries[key] as V);
    return values;
  }
}
