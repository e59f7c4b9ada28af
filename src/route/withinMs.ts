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
