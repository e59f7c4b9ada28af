/**
 * A contending process for the mutex tests: after `go`, it loops for
 * DURATION_MS doing a deliberately non-atomic read-modify-write of a shared
 * counter inside the critical section (GET, a pause, SET), and reports every
 * section it completed with the fencing token it held and the value it read.
 * MODE=withMutex uses withMutex; MODE=acquire uses acquire/release.
 */
import { RedisMutex } from '../../../src/mutex/RedisMutex';
import { openConnection } from '../../../src/route/connection';

const { REDIS_URL = '', NAMESPACE = '', DURATION_MS = '8000', MODE = 'acquire', PEER = 'peer' } = process.env;
const counterKey = process.env.COUNTER_KEY ?? `${NAMESPACE}:test:counter`;

async function main(): Promise<void> {
  const mutex = new RedisMutex({ redis: REDIS_URL, namespace: NAMESPACE, nodeId: PEER });
  // any form the tests run on: one server, redis+cluster://, redis+sentinel://
  const raw = openConnection(REDIS_URL).commands;
  await raw.connect();
  process.send?.({ type: 'ready' });
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  const sections: Array<{ fence: number; read: number }> = [];
  const options = { timeoutMs: 3000, waitMs: 30_000, retryDelayMs: 1, retryJitterMs: 4 };
  const until = Date.now() + Number(DURATION_MS);
  const critical = async (fence: number | null): Promise<void> => {
    const read = Number((await raw.get(counterKey)) ?? '0');
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 2)); // widen the race window
    await raw.set(counterKey, String(read + 1));
    sections.push({ fence: fence as number, read });
  };
  while (Date.now() < until) {
    if (MODE === 'withMutex') {
      await mutex.withMutex('counter', (_signal, lock) => critical(lock.fence), options);
    } else {
      const lock = await mutex.acquire('counter', options);
      try {
        await critical(lock.fence);
      } finally {
        await lock.release();
      }
    }
  }
  process.send?.({ type: 'done', sections });
  await mutex.close();
  raw.disconnect();
  process.disconnect?.();
}

main().catch((error: unknown) => {
  process.send?.({ type: 'error', message: String(error) });
  process.exitCode = 1;
});
