/**
 * The frame ids seen within the replay window, in bounded memory.
 *
 * Ids are kept in arrival order with their timestamps and forgotten once
 * older than the window. When `maxIds` are held, the oldest is forgotten
 * early and `floor` rises to its timestamp: from then on a frame no newer
 * than the floor is refused as possibly replayed, so forgetting an id never
 * lets its frame in twice (under a flood, late frames are refused instead).
 */
export class ReplayWindow {
  private readonly seen = new Map<string, number>();
  private floor = -Infinity;

  constructor(
    private readonly windowMs: number,
    private readonly maxIds: number,
  ) {}

  /** Why a frame of `sender` with `frameId` stamped `ts` must be refused, or undefined when it is fresh (and is then remembered). */
  admit(sender: string, frameId: string, ts: number, now: number): string | undefined {
    if (ts > now + this.windowMs) return `timestamp ${ts} is ${ts - now} ms ahead of this clock (replay window ${this.windowMs} ms)`;
    if (ts < now - this.windowMs) return `timestamp ${ts} is ${now - ts} ms old (replay window ${this.windowMs} ms)`;
    this.forgetOlderThan(now - this.windowMs);
    if (ts <= this.floor) return `timestamp ${ts} is no newer than the oldest frame id forgotten under load (at most ${this.maxIds} are remembered)`;
    const key = `${sender}\u0000${frameId}`;
    if (this.seen.has(key)) return 'frame id seen before (a replay)';
    if (this.seen.size >= this.maxIds) {
      const oldest = this.seen.entries().next().value as [string, number];
      this.seen.delete(oldest[0]);
      if (oldest[1] > this.floor) this.floor = oldest[1];
    }
    this.seen.set(key, ts);
    return undefined;
  }

  /** How many ids are remembered now. */
  get size(): number {
    return this.seen.size;
  }

  private forgetOlderThan(limit: number): void {
    // arrival order is close to timestamp order; an id stamped early but arriving late stays until those before it go, which only costs memory within maxIds
    for (const [key, ts] of this.seen) {
      if (ts >= limit) break;
      this.seen.delete(key);
    }
  }
}
