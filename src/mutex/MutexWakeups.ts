import type { Logger } from 'pino';
import type { MutexStore } from './MutexStore';

/**
 * The hand-over notices of one RedisMutex: one wake channel, subscribed on
 * the first wait, on which a release (by any process) tells a waiting
 * acquire of this RedisMutex that the mutex is now its own. A notice is
 * `<mutexId>|<lock value>`; it is matched to the waiting acquire by the
 * token that starts the value. A notice no acquire waits for (it gave up, or
 * its attempt failed, while the lock was being handed to it) goes to
 * `unclaimed`, which gives the lock back so that it does not block the
 * others until its timeout.
 */
export class MutexWakeups {
  private readonly waiting = new Map<string, (value: string, mutexId: string) => void>();
  /**
   * Tokens of acquires that found their hand-over by an attempt's reply: the
   * notice may still come, and is then expected, not unclaimed. Bounded:
   * most such notices arrive within a millisecond, and one missed here only
   * costs a release that finds nothing to release.
   */
  private readonly resolved = new Set<string>();
  private subscribed: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly store: MutexStore,
    /** The wake channel. */
    readonly channel: string,
    private readonly unclaimed: (mutexId: string, value: string) => void,
    private readonly logger: Logger,
  ) {}

  /**
   * Subscribes once (again after a failure); resolves false when notices
   * cannot be received, and the waits then rely on their periodic attempts.
   */
  ready(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.subscribed ??= this.store.listen(this.channel, (message) => this.deliver(message)).then(
      () => true,
      (error: unknown) => {
        this.subscribed = undefined;
        this.logger.warn({ err: error }, 'could not subscribe to hand-over notices; waiting acquires retry on their own');
        return false;
      },
    );
    return this.subscribed;
  }

  /** Calls `handed` with the lock value and the mutex id when a notice for `token` arrives. */
  expect(token: string, handed: (value: string, mutexId: string) => void): void {
    this.waiting.set(token, handed);
  }

  /** Stops waiting for `token`'s notice; `noticeMayCome`: the acquire got the lock another way, and its notice is no surprise. */
  forget(token: string, noticeMayCome = false): void {
    this.waiting.delete(token);
    if (!noticeMayCome) return;
    if (this.resolved.size >= 256) this.resolved.clear();
    this.resolved.add(token);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    await this.store.close();
  }

  private deliver(message: string): void {
    const bar = message.indexOf('|');
    const end = message.indexOf('|', bar + 1);
    if (bar <= 0 || end === -1) return; // not a notice: nothing to act on
    const value = message.slice(bar + 1);
    const token = value.slice(0, end - bar - 1);
    const handed = this.waiting.get(token);
    if (handed !== undefined) handed(value, message.slice(0, bar));
    else if (!this.resolved.delete(token)) this.unclaimed(message.slice(0, bar), value);
  }
}
