import { AcquireAbortedError } from '../errors/AcquireAbortedError';
import { AcquireTimeoutError } from '../errors/AcquireTimeoutError';
import type { MutexLock } from './MutexLock';
import type { ResolvedAcquire } from './mutexSettings';

/**
 * The waiting acquire: tries `take` until it yields a lock, pausing
 * `retryDelayMs` plus up to `retryJitterMs` between attempts (less when the
 * holder's lease ends first), until `waitMs` has passed or `signal` fired.
 * `take` answers a lock, or the holder's remaining ms (-1 when unknown). A
 * lock taken while the signal fired is given back with `giveBack`.
 */
export async function waitForMutex(mutexId: string, settings: ResolvedAcquire, take: () => Promise<MutexLock | number>, giveBack: (lock: MutexLock) => Promise<void>): Promise<MutexLock> {
  const { signal } = settings;
  const deadline = Date.now() + settings.waitMs;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw new AcquireAbortedError(mutexId, signal.reason);
    const outcome = await take();
    if (typeof outcome !== 'number') {
      if (signal?.aborted) {
        await giveBack(outcome);
        throw new AcquireAbortedError(mutexId, signal.reason);
      }
      return outcome;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new AcquireTimeoutError(mutexId, settings.waitMs, attempt);
    let delay = settings.retryDelayMs + Math.random() * settings.retryJitterMs;
    if (outcome > 0) delay = Math.min(delay, outcome + 1);
    await pause(Math.max(1, Math.min(delay, remaining)), signal, mutexId);
  }
}

function pause(ms: number, signal: AbortSignal | undefined, mutexId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AcquireAbortedError(mutexId, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
