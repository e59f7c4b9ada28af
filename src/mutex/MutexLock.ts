import { LockLostError } from '../errors/LockLostError';
import type { MutexKeys } from './MutexStore';

/** What a lock needs from its RedisMutex (internal). */
export interface LockBackend {
  /** Runs the extend script; true when Redis still held our token. Rejects with RedisUnavailableError. */
  extendLock(lock: MutexLock, timeoutMs: number): Promise<boolean>;
  /** Runs the release script and forgets the lock; true when our token was deleted. */
  releaseLock(lock: MutexLock): Promise<boolean>;
  /**
   * Reports a loss (log and `lost` event) and forgets the lock. `expired`:
   * the lease simply ran out on a lock nobody was refreshing, which is what
   * its timeout promised, not a fault.
   */
  reportLost(lock: MutexLock, error: LockLostError, expired: boolean): void;
  /** Reports an extension that failed for want of Redis (the lock may still be held). */
  reportRefreshFailure(lock: MutexLock, error: unknown): void;
}

type LockState = 'held' | 'lost' | 'released';

/**
 * One held mutex: its fencing token, its owner record, its lease, and an
 * AbortSignal that fires when it is lost. Returned by `acquire`, `tryAcquire`
 * and `withMutex` (and by `heldLock` for a mutex taken with `P`).
 *
 * Lost means: Redis no longer holds this lock's token (it expired, or it was
 * deleted or taken over), or the lease ran out locally with no confirmed
 * extension (the event loop may have stalled past it), or `close()`
 * released it. A lost lock never becomes held again.
 */
export class MutexLock {
  /** The mutex. */
  readonly mutexId: string;
  /** The holder's node id (`takenBy`). */
  readonly nodeId: string;
  /**
   * Fencing token: strictly greater than that of every earlier holder of
   * this mutex that got one. Hand it to the resource you protect and let it
   * refuse writes carrying a smaller token. Null for a lock taken with `P`.
   */
  readonly fence: number | null;
  /** When it was taken, ms since the epoch (this process's clock, as stored in the record). */
  readonly takenAt: number;
  /** @internal The stored lock value (unique by its token), compared by the release and extend scripts. */
  readonly value: string;
  /** @internal The Redis keys of the mutex. */
  readonly keys: MutexKeys;
  private timeout: number;
  private expiry: number;
  private state: LockState = 'held';
  private lostError: LockLostError | undefined;
  private controller: AbortController | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private releaseClaimed = false;
  private precise = false;
  private refreshed = false;

  /** @internal Created by RedisMutex. `sentAt` is when the acquiring command left: the lease is counted from then. */
  constructor(
    private readonly backend: LockBackend,
    init: { mutexId: string; keys: MutexKeys; nodeId: string; fence: number | null; value: string; takenAt: number; timeoutMs: number; sentAt: number },
  ) {
    this.mutexId = init.mutexId;
    this.keys = init.keys;
    this.nodeId = init.nodeId;
    this.fence = init.fence;
    this.value = init.value;
    this.takenAt = init.takenAt;
    this.timeout = init.timeoutMs;
    this.expiry = init.sentAt + init.timeoutMs;
  }

  /** The current lease in ms (the last timeout set by acquire or extend). */
  get timeoutMs(): number {
    return this.timeout;
  }

  /**
   * When the lease runs out unless extended, ms since the epoch: counted from
   * the moment the last acquiring or extending command was sent, so it is
   * never later than Redis's own expiry.
   */
  get expiresAt(): number {
    return this.expiry;
  }

  /** True while the lock is held: not released, not lost, and its lease not run out by this process's clock. */
  get held(): boolean {
    return this.state === 'held' && Date.now() < this.expiry;
  }

  /** True once the lock has been found lost (see the class description). */
  get lost(): boolean {
    return this.state === 'lost';
  }

  /** Fires when the lock is lost; its `reason` is a LockLostError. It does not fire on a normal release. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.lostError) this.controller.abort(this.lostError);
      else this.watchPrecisely();
    }
    return this.controller.signal;
  }

  /**
   * Throws LockLostError unless the lock is still held. Call it right before
   * an action that must not happen without the lock: it also catches a lease
   * that ran out while the event loop was blocked, before any timer could
   * report it.
   */
  assertHeld(): void {
    if (this.state === 'held' && Date.now() >= this.expiry) this.leaseRanOut('its timeout passed with no confirmed extension (was the event loop blocked?)');
    if (this.state === 'lost') throw this.lostError as LockLostError;
    if (this.state === 'released') throw new LockLostError(this.mutexId, this.fence, 'it was released');
  }

  /**
   * Sets a new lease of `timeoutMs` (default: the current one), counted from
   * now, provided Redis still holds this lock. Rejects with LockLostError
   * when it does not (the lock is then marked lost and its signal fires) and
   * with RedisUnavailableError when Redis does not answer.
   */
  async extend(timeoutMs: number = this.timeout): Promise<void> {
    this.assertHeld();
    const sentAt = Date.now();
    const extended = await this.backend.extendLock(this, timeoutMs);
    if (this.state === 'released') throw new LockLostError(this.mutexId, this.fence, 'it was released during the extension');
    if (!extended) {
      this.markLost('Redis no longer holds it (it expired, or was deleted or taken over)');
      throw this.lostError as LockLostError;
    }
    if (this.state !== 'held') throw this.lostError as LockLostError;
    this.timeout = timeoutMs;
    this.expiry = sentAt + timeoutMs;
    if (this.precise) this.armLease();
  }

  /**
   * Releases the lock if Redis still holds this lock's token (compare and
   * delete, atomically). Resolves true when it was released by this call,
   * false when it was no longer held (expired or taken over). Rejects with
   * RedisUnavailableError when Redis does not answer (it then expires by
   * itself after its timeout).
   */
  release(): Promise<boolean> {
    return this.backend.releaseLock(this);
  }

  /**
   * @internal Checks the lease against `now` (RedisMutex's lease timer does
   * this for every held lock at the earliest expiry; a lock with a signal or
   * automatic refresh also has a timer of its own, at its exact expiry).
   */
  checkLease(now: number): void {
    if (this.state === 'held' && now >= this.expiry) this.leaseRanOut('its timeout passed with no confirmed extension');
  }

  /** @internal Starts automatic extension every `ratio x timeout`. */
  startRefresh(ratio: number): void {
    if (this.state !== 'held' || this.refreshTimer) return;
    this.refreshed = true;
    this.watchPrecisely();
    const tick = (): void => {
      this.refreshTimer = undefined;
      if (this.state !== 'held') return;
      this.refreshing = true;
      this.extend().then(
        () => undefined,
        (error: unknown) => {
          if (!(error instanceof LockLostError)) this.backend.reportRefreshFailure(this, error);
        },
      ).finally(() => {
        this.refreshing = false;
        if (this.state === 'held') schedule();
      });
    };
    const schedule = (): void => {
      this.refreshTimer = setTimeout(tick, Math.max(1, Math.floor(this.timeout * ratio)));
      this.refreshTimer.unref();
    };
    schedule();
  }

  /** @internal True while an automatic extension is in flight. */
  get refreshInFlight(): boolean {
    return this.refreshing;
  }

  /**
   * @internal Called by RedisMutex before the release script runs: false when
   * a release already ran. A held lock becomes released; a lost one stays lost
   * (its token is still deleted from Redis if it is there).
   */
  claimRelease(): boolean {
    if (this.releaseClaimed) return false;
    this.releaseClaimed = true;
    if (this.state === 'held') this.state = 'released';
    this.stopTimers();
    return true;
  }

  /**
   * @internal Ends the lock as lost: stops its timers, fires its signal,
   * reports it once (unless `report` is false). `expired`: its lease ran out
   * with nobody refreshing it (see {@link LockBackend.reportLost}).
   */
  markLost(reason: string, report = true, expired = false): LockLostError {
    if (this.state !== 'held') return this.lostError ?? new LockLostError(this.mutexId, this.fence, 'it was released');
    const error = new LockLostError(this.mutexId, this.fence, reason);
    this.state = 'lost';
    this.lostError = error;
    this.stopTimers();
    this.controller?.abort(error);
    if (report) this.backend.reportLost(this, error, expired);
    return error;
  }

  /** @internal The loss, if any. */
  get lossError(): LockLostError | undefined {
    return this.lostError;
  }

  /** @internal The lease ran out: the lock's own timeout when nobody refreshed it, a failure of the refresh otherwise. */
  leaseRanOut(reason: string): void {
    this.markLost(reason, true, !this.refreshed);
  }

  /** Gives the lease a timer at its exact expiry, so that the signal fires on time. */
  private watchPrecisely(): void {
    if (this.precise || this.state !== 'held') return;
    this.precise = true;
    this.armLease();
  }

  private armLease(): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = undefined;
      if (this.state === 'held' && Date.now() >= this.expiry) this.leaseRanOut('its timeout passed with no confirmed extension');
      else if (this.state === 'held') this.armLease();
    }, Math.max(0, this.expiry - Date.now()));
    this.leaseTimer.unref();
  }

  private stopTimers(): void {
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.leaseTimer = undefined;
    this.refreshTimer = undefined;
  }
}
