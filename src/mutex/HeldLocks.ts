import type { MutexLock } from './MutexLock';
import { DeadlineTimer } from './DeadlineTimer';

/**
 * The locks a RedisMutex holds, by mutex id, and the timer that finds their
 * leases run out. A lock with a signal or automatic refresh has a timer of
 * its own at its exact expiry; the others (a plain `P`) are checked here, by
 * one {@link DeadlineTimer} at the earliest expiry rather than a timer per
 * lock (a timer per call costs the P/V fast path).
 */
export class HeldLocks {
  private readonly locks = new Map<string, MutexLock>();
  private readonly leases = new DeadlineTimer((now) => this.checkLeases(now));

  get(mutexId: string): MutexLock | undefined {
    return this.locks.get(mutexId);
  }

  /** Records a lock just taken; a stale one for the same id (expired unnoticed) is marked lost. */
  add(lock: MutexLock): void {
    const previous = this.locks.get(lock.mutexId);
    if (previous !== undefined && !previous.lost) previous.leaseRanOut('it expired, and this RedisMutex has taken the mutex again');
    this.locks.set(lock.mutexId, lock);
    this.leases.ensure(lock.expiresAt);
  }

  /** Forgets `lock` (not a newer lock of the same id): released, or lost. */
  delete(lock: MutexLock): void {
    if (this.locks.get(lock.mutexId) === lock) this.locks.delete(lock.mutexId);
  }

  /** Every lock recorded. */
  all(): MutexLock[] {
    return [...this.locks.values()];
  }

  /** Stops the timer for good. */
  close(): void {
    this.leases.close();
  }

  /** Marks lost every lock whose lease ran out; answers the earliest expiry of those still held (an extension only moves one later). */
  private checkLeases(now: number): number | undefined {
    let next: number | undefined;
    for (const lock of this.locks.values()) {
      lock.checkLease(now);
      if (!lock.lost && (next === undefined || lock.expiresAt < next)) next = lock.expiresAt;
    }
    return next;
  }
}
