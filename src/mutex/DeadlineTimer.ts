/**
 * One timer for many deadlines: armed at the earliest deadline it was told
 * of, and when it fires, re-armed at the next one `fire` names. Telling it of
 * a deadline no earlier than the armed one costs a comparison, so a command
 * or a lock per call costs no timer of its own; and it fires only when a
 * deadline may have passed (an interval would wake an idle process every
 * few milliseconds, which under contention costs a process wake-up each
 * time). Unref'd: it never keeps a process alive by itself.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since the epoch); Infinity when none is armed. */
  private armedAt = Infinity;
  private closed = false;

  constructor(
    /** Acts on the deadlines passed by `now`; returns the next deadline to wake for, if any. */
    private readonly fire: (now: number) => number | undefined,
  ) {}

  /** Makes sure the timer fires no later than `at` (ms since the epoch). */
  ensure(at: number): void {
    if (at >= this.armedAt || this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = at;
    this.timer = setTimeout(() => this.run(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  /** Stops it for good. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
  }

  private run(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const next = this.fire(Date.now());
    if (next !== undefined) this.ensure(next);
  }
}
