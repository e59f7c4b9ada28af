/**
 * How many deletions a TransientMap's Map takes before it is rebuilt: often
 * enough that a chain of replaced hash tables (see {@link TransientMap}) is
 * cut within a few dozen of them, rarely enough that copying the entries
 * alive costs a few nanoseconds per entry.
 */
const DELETIONS_PER_MAP = 1024;

/**
 * A Map for entries that come and go tens of thousands of times a second,
 * each living about a round trip: a caller's calls in flight, a consumer's
 * messages in progress.
 *
 * A `Map` replaced by a fresh copy every {@link DELETIONS_PER_MAP}
 * deletions, and by a new one when cleared. V8 replaces a Map's hash table
 * when deletions fill it (every few dozen entries here) or when it is
 * cleared, and a replaced table keeps its entries and a link to its
 * successor (for iterators). Once one replaced table has reached the old
 * generation (a table that lived through two scavenges, as one does while
 * a process is idle), each younger successor, and every value it still
 * names, is kept through every scavenge by that link until a full
 * collection: nearly every entry was promoted, and freed by frequent
 * mark-compacts (docs/benchmarks.md measures it). A fresh Map shares no
 * link with the old one's tables, so a chain ends with its Map. (An
 * object's dictionary has no such links, but every string key used as a
 * property name is interned in V8's string table, which cost more than the
 * collections.)
 *
 * `keys()`, `values()` and `entries()` return arrays (snapshots), so the
 * map may change while they are walked.
 */
export class TransientMap<K, V> {
  private map = new Map<K, V>();
  private deletions = 0;

  /** How many entries the map holds. */
  get size(): number {
    return this.map.size;
  }

  /** The value of `key`, or undefined. */
  get(key: K): V | undefined {
    return this.map.get(key);
  }

  /** Whether `key` has an entry. */
  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Sets the value of `key`. */
  set(key: K, value: V): this {
    this.map.set(key, value);
    return this;
  }

  /** Removes the entry of `key`; whether there was one. */
  delete(key: K): boolean {
    if (!this.map.delete(key)) return false;
    if (++this.deletions === DELETIONS_PER_MAP) {
      this.deletions = 0;
      this.map = new Map(this.map);
    }
    return true;
  }

  /** Removes every entry (into a new Map: clearing one replaces its table all the same). */
  clear(): void {
    this.map = new Map();
    this.deletions = 0;
  }

  /** Every key, in insertion order. */
  keys(): K[] {
    return [...this.map.keys()];
  }

  /** Every value, in insertion order. */
  values(): V[] {
    return [...this.map.values()];
  }

  /** Every entry, in insertion order. */
  entries(): Array<[K, V]> {
    return [...this.map.entries()];
  }
}
