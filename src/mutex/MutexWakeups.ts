import type { Logger } from 'pino';
import type { MutexStore } from './MutexStore';

/**
 * Wake channels kept subscribed after their last wait, so that the next acquire of the same mutex
 * pays no SSUBSCRIBE round trip before its first attempt; beyond this many, the longest idle is
 * unsubscribed.
 */
const MAX_IDLE_CHANNELS = 64;

/**
 * The hand-over notices of one RedisMutex: one wake channel per mutex waited
 * for, subscribed while an acquire of that mutex waits (the hand-over script
 * publishes from the lock's slot, and an ACL grants a service the channels of
 * its own mutexes only), on which a release (by any process) tells a waiting
 * acquire of this RedisMutex that the mutex is now its own. A notice is
 * `<mutexId>|<lock value>`; it is matched to the waiting acquire by the
 * token that starts the value. A notice no acquire waits for (it gave up, or
 * its attempt failed, while the lock was being handed to it) goes to
 * `unclaimed`, which gives the lock back so that it does not block the
 * others until its timeout.
 */
export class MutexWakeups {
  /** The waiting acquires by token: their mutex, and what to call when handed the lock. */
  private readonly waiting = new Map<string, { mutexId: string; handed: (value: string, mutexId: string) => void }>();
  /** How many acquires wait (queued, with notices) per mutex id: a release of one of those mutexes hands locally. */
  private readonly waitsPerMutex = new Map<string, number>();
  /**
   * Tokens of acquires that found their hand-over by an attempt's reply: the
   * notice may still come, and is then expected, not unclaimed. Bounded:
   * most such notices arrive within a millisecond, and one missed here only
   * costs a release that finds nothing to release.
   */
  private readonly resolved = new Set<string>();
  /** Each wake channel subscribed, and how many acquires wait on it. */
  private readonly channels = new Map<string, { subscribed: Promise<boolean>; waits: number }>();
  /** The subscribed channels no acquire waits on now, longest idle first. */
  private readonly idle = new Set<string>();
  private closed = false;

  constructor(
    private readonly store: MutexStore,
    /** The wake channel of `mutexId`. */
    private readonly channelOf: (mutexId: string) => string,
    private readonly unclaimed: (mutexId: string, value: string) => void,
    private readonly logger: Logger,
  ) {}

  /** The wake channel on which an acquire of `mutexId` is told of its hand-over. */
  channel(mutexId: string): string {
    return this.channelOf(mutexId);
  }

  /**
   * Subscribes once (again after a failure) and counts an acquire of
   * `mutexId` as waiting; resolves false when notices cannot be received, and
   * the wait then relies on its periodic attempts. A true answer is to be
   * matched by one {@link done}.
   */
  ready(mutexId: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const channel = this.channel(mutexId);
    let entry = this.channels.get(channel);
    if (entry === undefined) {
      const created: { subscribed: Promise<boolean>; waits: number } = { waits: 0, subscribed: Promise.resolve(false) };
      created.subscribed = this.store.listen(channel, (message) => this.deliver(message)).then(
        () => true,
        (error: unknown) => {
          if (this.channels.get(channel) === created) this.channels.delete(channel);
          this.logger.warn({ err: error }, 'could not subscribe to hand-over notices; waiting acquires retry on their own');
          return false;
        },
      );
      entry = created;
      this.channels.set(channel, entry);
    }
    this.idle.delete(channel);
    entry.waits += 1;
    return entry.subscribed;
  }

  /**
   * An acquire of `mutexId` that {@link ready} answered true no longer waits
   * (it has the lock, or has left the queue). The channel stays subscribed
   * while it is among the {@link MAX_IDLE_CHANNELS} most recently idle: a
   * hand-over reaches only queued acquires, so an idle subscription is handed
   * nothing (a queue entry whose acquire vanished without leaving is handed
   * back as unclaimed).
   */
  done(mutexId: string): void {
    const channel = this.channel(mutexId);
    const entry = this.channels.get(channel);
    if (entry === undefined) return;
    entry.waits -= 1;
    if (entry.waits > 0) return;
    this.idle.add(channel);
    if (this.idle.size <= MAX_IDLE_CHANNELS) return;
    const oldest = this.idle.values().next().value as string;
    this.idle.delete(oldest);
    this.channels.delete(oldest);
    this.store.unlisten(oldest).catch((error: unknown) => this.logger.debug({ err: error }, 'could not unsubscribe a wake channel'));
  }

  /** Calls `handed` with the lock value and the mutex id when a notice for `token`, an acquire of `mutexId`, arrives. */
  expect(token: string, mutexId: string, handed: (value: string, mutexId: string) => void): void {
    this.waiting.set(token, { mutexId, handed });
    this.waitsPerMutex.set(mutexId, (this.waitsPerMutex.get(mutexId) ?? 0) + 1);
  }

  /** Stops waiting for `token`'s notice; `noticeMayCome`: the acquire got the lock another way, and its notice is no surprise. */
  forget(token: string, noticeMayCome = false): void {
    const waiting = this.waiting.get(token);
    if (waiting !== undefined) {
      this.waiting.delete(token);
      const waits = (this.waitsPerMutex.get(waiting.mutexId) ?? 1) - 1;
      if (waits > 0) this.waitsPerMutex.set(waiting.mutexId, waits);
      else this.waitsPerMutex.delete(waiting.mutexId);
    }
    if (!noticeMayCome) return;
    if (this.resolved.size >= 256) this.resolved.clear();
    this.resolved.add(token);
  }

  /**
   * The wake channel to name in a release of `mutexId` when an acquire here
   * waits for it (the release script then hands such a waiter the lock in
   * its reply, without a notice); undefined otherwise, so that a release
   * nobody here waits for sends no more than a plain one.
   */
  ownChannel(mutexId: string): string | undefined {
    return this.waitsPerMutex.has(mutexId) ? this.channel(mutexId) : undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    this.waitsPerMutex.clear();
    this.channels.clear();
    this.idle.clear();
    await this.store.close();
  }

  private deliver(message: string): void {
    const bar = message.indexOf('|');
    const end = message.indexOf('|', bar + 1);
    if (bar <= 0 || end === -1) return; // not a notice: nothing to act on
    this.handedHere(message.slice(0, bar), message.slice(bar + 1));
  }

  /**
   * The lock `value` of `mutexId` was handed to the acquire here whose token
   * starts it (or to one that gave up): told by a notice, or by a release made
   * here, whose reply carries the notice it did not send.
   */
  handedHere(mutexId: string, value: string): void {
    const bar = value.indexOf('|');
    if (bar <= 0) return;
    const token = value.slice(0, bar);
    const waiting = this.waiting.get(token);
    if (waiting !== undefined) waiting.handed(value, mutexId);
    else if (!this.resolved.delete(token)) this.unclaimed(mutexId, value);
  }
}
