/**
 * How many deletions a table's Map takes before it is rebuilt: often enough
 * that a chain of replaced hash tables (see {@link CallTable}) is cut within
 * a few dozen of them, rarely enough that copying the calls in flight costs
 * a few nanoseconds per call.
 */
const DELETIONS_PER_MAP = 1024;

/**
 * The calls of one caller in flight, by id: entries that come and go tens of
 * thousands of times a second, each living about a round trip.
 *
 * A `Map` that is replaced by a fresh copy every {@link DELETIONS_PER_MAP}
 * deletions. V8 replaces a Map's hash table when deletions fill it (every
 * few dozen calls here), and a replaced table keeps its entries and a link
 * to its successor (for iterators). Once one replaced table has reached the
 * old generation (a table that lived through two scavenges, as one does
 * while a caller is idle), each younger successor, and every call it still
 * names, is kept through every scavenge by that link until a full
 * collection: nearly every call was promoted, and freed by frequent
 * mark-compacts (docs/benchmarks.md measures it). A fresh Map shares no link
 * with the old one's tables, so a chain ends with its Map. (An object's
 * dictionary has no such links, but every id used as a property name is
 * interned in V8's string table, which cost more than the collections.)
 */
export class CallTable<V> {
  private entries = new Map<string, V>();
  private deletions = 0;

  /** How many entries the table holds. */
  get size(): number {
    return this.entries.size;
  }

  /** The entry of `key`, or undefined. */
  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /** Sets the entry of `key`. */
  set(key: string, value: V): void {
    this.entries.set(key, value);
  }

  /** Removes the entry of `key`; whether there was one. */
  delete(key: string): boolean {
    if (!this.entries.delete(key)) return false;
    if (++this.deletions === DELETIONS_PER_MAP) {
      this.deletions = 0;
      this.entries = new Map(this.entries);
    }
    return true;
  }

  /** Every entry, in a new array (safe to change the table while walking it). */
  values(): V[] {
    return [...this.entries.values()];
  }
}
