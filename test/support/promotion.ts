/**
 * What reaches the old generation of V8's heap while some structure takes a
 * stream of short-lived items: the figure by which a test shows that items
 * that come and go die young (none of them kept alive through scavenges).
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options?: { type: 'minor' | 'major' }) => void;

let collect: Collect | undefined;

/** V8's `gc()` (exposed at run time: the test process is started without `--expose-gc`). */
export function gc(): Collect {
  if (collect === undefined) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as Collect;
  }
  return collect;
}

/** Ends the current job (WeakRef targets stay alive until then), then makes a full collection. */
export async function collectAfterThisJob(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  gc()();
}

const oldSpace = (): number => getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')?.space_used_size ?? 0;

/**
 * Bytes the old space gains per item while `round(count)` feeds `count`
 * items, `rounds` times, with a scavenge after each round; before, `warm()`
 * runs and two scavenges move what the structure holds then to the old
 * generation, as a long-lived process's structures are. A full collection in
 * the middle could only lower the figure.
 */
export async function promotedBytesPerItem(warm: () => unknown, round: (count: number) => unknown, rounds = 10, perRound = 2_000): Promise<number> {
  const collectNow = gc();
  collectNow();
  await warm();
  collectNow({ type: 'minor' });
  collectNow({ type: 'minor' });
  const before = oldSpace();
  for (let i = 0; i < rounds; i++) {
    await round(perRound);
    // what the round left to callbacks and promise reactions runs before the scavenge
    await new Promise((resolve) => setImmediate(resolve));
    collectNow({ type: 'minor' });
  }
  return (oldSpace() - before) / (rounds * perRound);
}
