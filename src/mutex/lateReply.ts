import type { Logger } from 'pino';
import type { MutexKeys, MutexStore } from './MutexStore';

/**
 * Gives back a lock taken by a reply that came after the caller was told the
 * call failed (RedisUnavailableError): nobody owns it, so it would otherwise
 * block every node until its timeout.
 */
export function releaseLateLock(store: MutexStore, logger: Logger, keys: MutexKeys, mutexId: string, value: string, operation: string): void {
  logger.warn({ operation }, 'a late reply took a mutex after the call had failed; releasing it');
  store.releaseIfHeld(keys, mutexId, value).catch((error: unknown) => {
    logger.warn({ err: error, operation }, 'could not release a mutex taken by a late reply; Redis frees it at its timeout');
  });
}
