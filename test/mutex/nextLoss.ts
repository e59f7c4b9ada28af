import type { LockLostError } from '../../src/errors/LockLostError';
import type { RedisMutex } from '../../src/mutex/RedisMutex';

/** Resolves with the LockLostError of the next `lost` event about `mutexId`. */
export function nextLoss(mutex: RedisMutex, mutexId: string): Promise<LockLostError> {
  return new Promise((resolve) => {
    const listener = (error: LockLostError) => {
      if (error.mutexId !== mutexId) return;
      mutex.off('lost', listener);
      resolve(error);
    };
    mutex.on('lost', listener);
  });
}
