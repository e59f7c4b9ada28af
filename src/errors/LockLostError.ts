import { IntracomError } from './IntracomError';

/**
 * A held mutex is no longer ours: it expired (its timeout passed without an
 * extension, for instance because the event loop stalled), another node took
 * it over, it was deleted, or `RedisMutex.close()` released it while the
 * critical section was still running. It is the `reason` of the lock's
 * AbortSignal, what `MutexLock.extend()` and `assertHeld()` throw, what
 * `withMutex` rejects with when the lock was lost while `fn` ran, and what the
 * `lost` event of RedisMutex carries. Work done after the loss was not
 * protected by the mutex.
 */
export class LockLostError extends IntracomError {
  /** The mutex that was lost. */
  readonly mutexId: string;
  /** The fencing token of the lost lock (null for a lock taken with `P`). */
  readonly fence: number | null;

  constructor(mutexId: string, fence: number | null, reason: string) {
    super('ERR_LOCK_LOST', `lost mutex "${mutexId}"${fence === null ? '' : ` (fence ${fence})`}: ${reason}`);
    this.mutexId = mutexId;
    this.fence = fence;
  }
}
