import { performance } from 'node:perf_hooks';

/**
 * Waits for `promise` (its rejection ignored) but at most `ms`; resolves true
 * when it settled in time, false when the time ran out first. Infinity waits
 * without a timer. For shutdown paths, which must end in bounded time even
 * when Redis never answers.
 */
export async function withinMs(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const settled = promise.then(
    () => true,
    () => true,
  );
  if (ms === Infinity) return settled;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `work`, or a rejection once `deadline` (a performance.now() time) passes
 * first, naming `limit` and what was waited for: connect() stays within its
 * limit whatever step Redis stops answering at.
 */
export async function beforeDeadline<T>(work: Promise<T>, deadline: number, limit: string, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${limit} while ${what}`)), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
