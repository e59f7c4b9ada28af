/** Events dated by one reading of the clock, at most, within one turn of the event loop. */
const EVENTS_PER_READING = 32;

/**
 * The wall clock that dates events (`headers.createdAt`), read at most once
 * per {@link EVENTS_PER_READING} events within one turn of the event loop
 * and again in every new turn. A burst of events published in one loop
 * would otherwise read it once per event, and on some machines a reading
 * costs a tenth of queueing an event (docs/benchmarks.md). An event is
 * never dated earlier than the events published just before it in its own
 * turn, and headers still change with the millisecond.
 */
export class BurstClock {
  private reading = 0;
  private uses = EVENTS_PER_READING;
  private turnEndScheduled = false;
  private readonly turnEnded = (): void => {
    this.turnEndScheduled = false;
    this.uses = EVENTS_PER_READING;
  };

  /** Milliseconds since the epoch, as `Date.now()` read at most {@link EVENTS_PER_READING} events ago in this turn. */
  now(): number {
    if (++this.uses > EVENTS_PER_READING) {
      this.reading = Date.now();
      this.uses = 1;
      if (!this.turnEndScheduled) {
        this.turnEndScheduled = true;
        queueMicrotask(this.turnEnded);
      }
    }
    return this.reading;
  }
}
