/**
 * An interval that runs only while it has work: `tick` answers whether to
 * keep running, and `start` is cheap when it already runs. Unref'd: a sweep
 * never keeps a process alive by itself. One interval for many deadlines is
 * cheaper than a timer per call on the P/V fast path.
 */
export class Sweep {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly periodMs: number,
    private readonly tick: (now: number) => boolean,
  ) {}

  /** True while the interval runs. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => {
      if (!this.tick(Date.now())) this.stop();
    }, this.periodMs);
    this.timer.unref();
  }

  /** Stops it for good. */
  close(): void {
    this.closed = true;
    this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
