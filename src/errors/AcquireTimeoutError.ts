import { IntracomError } from './IntracomError';

/** `RedisMutex.acquire` or `withMutex` waited `waitMs` without getting the mutex: another node held it all along. */
export class AcquireTimeoutError extends IntracomError {
  /** The mutex that could not be acquired. */
  readonly mutexId: string;
  /** How long it waited, in ms (the `waitMs` in force). */
  readonly waitMs: number;
  /** How many times it tried. */
  readonly attempts: number;

  constructor(mutexId: string, waitMs: number, attempts: number) {
    super('ERR_ACQUIRE_TIMEOUT', `could not acquire mutex "${mutexId}" within ${waitMs} ms (${attempts} attempts): another node held it`);
    this.mutexId = mutexId;
    this.waitMs = waitMs;
    this.attempts = attempts;
  }
}
