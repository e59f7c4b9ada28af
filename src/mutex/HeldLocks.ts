import type { MutexLock } from './MutexLock';
import { Sweep } from './Sweep';

/** How often the lease sweep runs, in ms: the precision of lease expiry for locks without a signal or refresh. */
const LEASE_SWEEP_MS = 25;

/**
 * The locks a RedisMutex holds, by mutex id, and the sweep that finds their
 * leases run out. A lock with a signal or automatic refresh has a timer of
 * its own at its exact expiry; the others (a plain `P`) are checked here, by
 * one interval for all of them rather than a timer per lock (a timer per
 * call costs the P/V fast path).
 */
export class HeldLocks {
  private readonly locks = new Map<string, MutexLock>();
  private readonly sweep = new Sweep(LEASE_SWEEP_MS, (now) => this.checkLeases(now));

  get(mutexId: string): MutexLock | undefined {
    return this.locks.get(mutexId);
  }

  /** Records a lock just taken; a stale one for the same id (expired unnoticed) is marked lost. */
  add(lock: MutexLock): void {
    const previous = this.locks.get(lock.mutexId);
    if (previous !== undefined && !previous.lost) previous.leaseRanOut('it expired, and this RedisMutex has taken the mutex again');
    this.locks.set(lock.mutexId, lock);
    this.sweep.start();
  }

  /** Forgets `lock` (not a newer lock of the same id): released, or lost. */
  delete(lock: MutexLock): void {
    if (this.locks.get(lock.mutexId) === lock) this.locks.delete(lock.mutexId);
  }

  /** Every lock recorded. */
  all(): MutexLock[] {
    return [...this.locks.values()];
  }

  /** Stops the sweep for good. */
  close(): void {
    this.sweep.close();
  }

  /** Marks lost every lock whose lease ran out; answers whether the sweep is still needed. */
  private checkLeases(now: number): boolean {
    for (const lock of this.locks.values()) lock.checkLease(now);
    return this.locks.size > 0;
  }
}
