/** The RPC behaviour suite, run on the memory route and on the redis route. */
import { MemoryBus } from '../../src/route/MemoryBus';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { startRedis, type TestRedis } from '../support/redis-server';
import { rpcBehaviour } from './behaviour';

rpcBehaviour('memory', async () => {
  const bus = new MemoryBus();
  const made: RedisRPCClient[] = [];
  return {
    async make(service, options = {}) {
      const client = new RedisRPCClient({ service, route: 'memory', memoryBus: bus, ...options });
      made.push(client);
      await client.connect();
      return client;
    },
    async cleanup() {
      await Promise.all(made.map((client) => client.close()));
    },
  };
});

describe('redis route', () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  let run = 0;
  rpcBehaviour('redis', async () => {
    const namespace = `${redis.namespace}r${run++}`;
    const made: RedisRPCClient[] = [];
    return {
      async make(service, options = {}) {
        const client = new RedisRPCClient({ service, redis: redis.url, namespace, ...options });
        made.push(client);
        await client.connect();
        return client;
      },
      async cleanup() {
        await Promise.all(made.map((client) => client.close()));
      },
    };
  });
});
