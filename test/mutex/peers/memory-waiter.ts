/**
 * A process whose only work is a waiting acquire on the memory route: one
 * instance holds a mutex with a 300 ms lease and never releases it, another
 * waits for it. Prints `waiting`, then `acquired` once the wait succeeds; if
 * nothing kept the process alive it would end after `waiting`.
 */
import { RedisClient } from '../../../src/client/RedisClient';
import { RedisMutex } from '../../../src/mutex/RedisMutex';
import { MemoryBus } from '../../../src/route/MemoryBus';

async function main(): Promise<void> {
  const bus = new MemoryBus();
  const holderClient = new RedisClient({ service: 'waiter', route: 'memory', memoryBus: bus });
  const waiterClient = new RedisClient({ service: 'waiter', route: 'memory', memoryBus: bus });
  await Promise.all([holderClient.connect(), waiterClient.connect()]);
  const holder = new RedisMutex({ redis: holderClient, nodeId: 'holder' });
  const waiter = new RedisMutex({ redis: waiterClient, nodeId: 'waiter' });
  if (!(await holder.P('job', 'holder', 300))) throw new Error('the holder could not take the mutex');
  console.log('waiting');
  void waiter.acquire('job', { waitMs: 5000 }).then(async (lock) => {
    console.log('acquired');
    await lock.release();
    await Promise.all([holder.close(), waiter.close()]);
    await Promise.all([holderClient.close(), waiterClient.close()]);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
