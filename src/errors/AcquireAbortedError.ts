import { IntracomError } from './IntracomError';

/**
 * The AbortSignal passed to `RedisMutex.acquire` or `withMutex` fired before
 * the mutex was acquired; nothing is held. `cause` is the signal's reason.
 */
export class AcquireAbortedError extends IntracomError {
  /** The mutex that was being acquired. */
  readonly mutexId: string;

  constructor(mutexId: string, reason: unknown) {
    super('ERR_ACQUIRE_ABORTED', `acquiring mutex "${mutexId}" was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
    this.mutexId = mutexId;
  }
}
