import { AcquireAbortedError } from '../errors/AcquireAbortedError';
import { AcquireTimeoutError } from '../errors/AcquireTimeoutError';
import type { MutexLock } from './MutexLock';
import type { AttemptReply, QueueAs } from './MutexStore';
import type { ResolvedAcquire } from './mutexSettings';
import type { MutexWakeups } from './MutexWakeups';

/** What a waiting acquire needs from its RedisMutex. */
export interface AcquisitionHost {
  readonly wakeups: MutexWakeups;
  /** One fenced attempt under the command deadline; queues the acquisition when `queue` is given. */
  attempt(acquisition: Acquisition, sentAt: number, queue: QueueAs | null): Promise<AttemptReply>;
  /** Records the lock this acquisition got: its stored value (null: the one its own attempt wrote), and when the lease is counted from. */
  lockOf(acquisition: Acquisition, value: string | null, fence: number, takenAt: number, sentAt: number): MutexLock;
  /** True when Redis still holds `value`, the lock handed to the acquisition, now with a lease of its timeout from now (an extension). */
  confirm(acquisition: Acquisition, value: string): Promise<boolean>;
  /** Takes the acquisition out of the queue, passing on a lock handed to it meanwhile; never rejects. */
  leave(acquisition: Acquisition): Promise<void>;
  /** Releases a lock nobody will be handed; never rejects. */
  giveBack(lock: MutexLock): Promise<void>;
}

/**
 * One waiting acquire (`acquire`, `withMutex`). Its first attempt takes a
 * free mutex, or queues it in arrival order; a release anywhere then hands
 * it the mutex at once and says so on its RedisMutex's wake channel. It
 * still makes an attempt every `retryDelayMs` plus up to `retryJitterMs`
 * (sooner when the holder's lease ends first): that renews its place, finds
 * a hand-over whose notice was lost, and takes over from a holder whose lease
 * ran out. Without notices (the subscription failed) it only retries.
 */
export class Acquisition {
  private lock: MutexLock | undefined;
  /** A hand-over that came when more than half its lease, counted from the last moment known to precede it, had gone: confirmed by an extension before it is used. */
  private stale: { value: string; fence: number; takenAt: number } | undefined;
  /** True when the lock came by an attempt's reply saying it had been handed over (its notice may still come). */
  private handedByReply = false;
  /** When the first attempt left: no hand-over can precede it (the token is new). */
  private firstSentAt = 0;
  /** When the last attempt that left it queued was sent: any hand-over came after it. */
  private queuedSince: number | undefined;
  private interrupt: ((error?: Error) => void) | undefined;
  private cancelled: Error | undefined;

  constructor(
    readonly mutexId: string,
    readonly settings: ResolvedAcquire,
    /** The owner token of this acquisition, the same in every attempt (it is the queue entry's identity). */
    readonly token: string,
    private readonly host: AcquisitionHost,
  ) {}

  /** Resolves with the lock; rejects with AcquireTimeoutError, AcquireAbortedError, or the error of a failed attempt. */
  async run(): Promise<MutexLock> {
    const { waitMs } = this.settings;
    const deadline = Date.now() + waitMs;
    const notified = await this.host.wakeups.ready(this.mutexId);
    try {
      return await this.wait(notified, deadline);
    } finally {
      if (notified) this.host.wakeups.done(this.mutexId);
    }
  }

  private async wait(notified: boolean, deadline: number): Promise<MutexLock> {
    const { signal, waitMs } = this.settings;
    const queue = notified ? { channel: this.host.wakeups.channel(this.mutexId), aliveMs: 1000 + 2 * (this.settings.retryDelayMs + this.settings.retryJitterMs) } : null;
    if (notified) this.host.wakeups.expect(this.token, this.mutexId, (value, mutexId) => mutexId === this.mutexId && this.handed(value));
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.cancelled) throw this.cancelled;
        if (signal?.aborted) throw new AcquireAbortedError(this.mutexId, signal.reason);
        const sentAt = Date.now();
        if (attempt === 1) this.firstSentAt = sentAt;
        const reply = await this.host.attempt(this, sentAt, queue);
        if (this.lock === undefined) {
          if (reply[0] === 1) this.lock = this.host.lockOf(this, null, reply[1], sentAt, sentAt);
          else if (reply[0] === 2) {
            this.handed(reply[1], this.queuedSince ?? sentAt);
            this.handedByReply = true;
          }
          else this.queuedSince = sentAt;
        }
        if (this.stale !== undefined) await this.confirm();
        if (this.lock !== undefined) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new AcquireTimeoutError(this.mutexId, waitMs, attempt);
        let delay = this.settings.retryDelayMs + Math.random() * this.settings.retryJitterMs;
        if (reply[0] === 0 && reply[1] > 0) delay = Math.min(delay, reply[1] + 1);
        await this.pause(Math.max(1, Math.min(delay, remaining)));
        if (this.stale !== undefined) await this.confirm();
        if (this.lock !== undefined) break;
      }
    } catch (error) {
      this.host.wakeups.forget(this.token);
      if (this.lock !== undefined) await this.host.giveBack(this.lock);
      // leaving also passes on a lock handed to this token, confirmed or not
      else if (queue || this.stale) await this.host.leave(this);
      throw error;
    }
    this.host.wakeups.forget(this.token, this.handedByReply);
    const lock = this.lock as MutexLock;
    if (signal?.aborted || this.cancelled) {
      await this.host.giveBack(lock);
      throw this.cancelled ?? new AcquireAbortedError(this.mutexId, signal?.reason);
    }
    return lock;
  }

  /** Ends the wait with `error` (close()). */
  cancel(error: Error): void {
    this.cancelled = error;
    this.interrupt?.(error);
  }

  /**
   * The mutex was handed to this acquisition: `value` is the lock as stored
   * (`token|fence|takenAt|timeoutMs|nodeId`). The lease is counted from
   * `since`, a moment known to precede the hand-over, so that this process
   * never believes it holds the lock longer than Redis keeps it; when more
   * than half of that lease has gone (a lease short beside the retry
   * delay), the lock is first confirmed by an extension (see confirm). A
   * value that is not this acquisition's is ignored.
   */
  private handed(value: string, since: number = this.queuedSince ?? this.firstSentAt): void {
    if (this.lock !== undefined || this.stale !== undefined) return;
    const fields = value.split('|');
    const fence = Number(fields[1]);
    const takenAt = Number(fields[2]);
    if (fields.length < 5 || fields[0] !== this.token || fields[3] !== String(this.settings.timeoutMs) || fields.slice(4).join('|') !== this.settings.nodeId) return;
    if (!Number.isSafeInteger(fence) || !Number.isFinite(takenAt)) return;
    if (Date.now() - since > this.settings.timeoutMs / 2) this.stale = { value, fence, takenAt };
    else this.lock = this.host.lockOf(this, value, fence, takenAt, since);
    this.interrupt?.();
  }

  /**
   * Confirms a stale hand-over: an extension sent now gives the lock a full
   * lease counted from its sending, or finds that the lease already ran out
   * in Redis too; the wait then goes on (the next attempt queues again).
   */
  private async confirm(): Promise<void> {
    const { value, fence, takenAt } = this.stale as { value: string; fence: number; takenAt: number };
    const sentAt = Date.now();
    const held = await this.host.confirm(this, value);
    this.stale = undefined;
    if (held) this.lock = this.host.lockOf(this, value, fence, takenAt, sentAt);
  }

  /** Sleeps `ms` (not unref'd: a waiting acquire keeps its process alive); ends early on a hand-over, an abort or cancel(). */
  private pause(ms: number): Promise<void> {
    const { signal } = this.settings;
    return new Promise((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.interrupt = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onAbort = (): void => done(new AcquireAbortedError(this.mutexId, signal?.reason));
      const timer = setTimeout(done, ms);
      this.interrupt = done;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
