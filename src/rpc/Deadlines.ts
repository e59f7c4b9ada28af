import { performance } from 'node:perf_hooks';

/**
 * What {@link Deadlines} keeps: the links live in the item itself, so that
 * adding and removing allocate nothing.
 */
export interface Timed {
  /** When it expires, on the `performance.now()` clock (ms). */
  deadline: number;
  /** The line it waits in; undefined when in none. */
  line: DeadlineLine<this> | undefined;
  earlier: this | undefined;
  later: this | undefined;
}

/** Items of one duration, in order of deadline (added later = expires later), with one timer for the earliest. */
interface DeadlineLine<T> {
  readonly durationMs: number;
  first: T | undefined;
  last: T | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Deadlines of many items with few timers: items of the same duration form
 * a line in which the earliest is always first, and one timer per line
 * waits for the first of it. Adding and removing are O(1) and allocate
 * nothing; when a timer fires, every expired item of its line is handed to
 * `onExpire`, and the timer is set again for the new first. A call that
 * needs its own Node timer (about 200 bytes and a list insertion each) is
 * the alternative, at tens of thousands of calls a second.
 *
 * A line's timer is ref'd while the line holds items: a pending call keeps
 * the process alive until it settles or times out, on the memory route too
 * (where no socket does); an emptied line's timer is unref'd, so it never
 * holds the process after the last call settled.
 */
export class Deadlines<T extends Timed> {
  private readonly lines = new Map<number, DeadlineLine<T>>();

  constructor(private readonly onExpire: (item: T) => void) {}

  /** Starts the item's deadline, `durationMs` from now; returns the deadline. */
  add(item: T, durationMs: number): number {
    let line = this.lines.get(durationMs) as DeadlineLine<T> | undefined;
    if (line === undefined) {
      line = { durationMs, first: undefined, last: undefined, timer: undefined };
      this.lines.set(durationMs, line);
    }
    item.deadline = performance.now() + durationMs;
    item.line = line;
    item.earlier = line.last;
    item.later = undefined;
    if (line.last === undefined) {
      line.first = item;
      line.timer?.ref(); // unref'd when the line emptied
    } else line.last.later = item;
    line.last = item;
    if (line.timer === undefined) this.arm(line, durationMs);
    return item.deadline;
  }

  /** Takes the item out of its line (it will not expire); does nothing if it is in none. */
  remove(item: T): void {
    const line = item.line as DeadlineLine<T> | undefined;
    if (line === undefined) return;
    if (item.earlier === undefined) line.first = item.later;
    else item.earlier.later = item.later;
    if (item.later === undefined) line.last = item.earlier;
    else item.later.earlier = item.earlier;
    item.line = undefined;
    item.earlier = undefined;
    item.later = undefined;
    // the line's timer stays: when it fires with nothing expired, it waits again for the new first
    if (line.first === undefined) line.timer?.unref();
  }

  /** Stops every timer and forgets every item (their deadlines no longer fire). */
  clear(): void {
    for (const line of this.lines.values()) {
      if (line.timer !== undefined) clearTimeout(line.timer);
      for (let item = line.first; item !== undefined; ) {
        const next = item.later;
        item.line = undefined;
        item.earlier = undefined;
        item.later = undefined;
        item = next;
      }
    }
    this.lines.clear();
  }

  private arm(line: DeadlineLine<T>, inMs: number): void {
    line.timer = setTimeout(this.fire, Math.max(1, Math.ceil(inMs)), line);
  }

  private readonly fire = (line: DeadlineLine<T>): void => {
    line.timer = undefined;
    const now = performance.now();
    for (let item = line.first; item !== undefined && item.deadline <= now; item = line.first) {
      this.remove(item);
      this.onExpire(item);
    }
    if (line.timer !== undefined) return; // an expiry handler added to this line and armed it
    if (line.first !== undefined) this.arm(line, line.first.deadline - performance.now());
    else if (this.lines.get(line.durationMs) === line) this.lines.delete(line.durationMs);
  };
}
