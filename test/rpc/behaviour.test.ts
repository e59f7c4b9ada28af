/** The RPC behaviour suite, run on the memory route and on the redis route. */
import { MemoryBus } from '../../src/route/MemoryBus';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { testTargets, type TestTarget } from '../support/redis-targets';
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

for (const kind of testTargets()) {
  describe(`redis route${kind.suffix}`, () => {
    let redis: TestTarget;
    before(async () => {
      redis = await kind.start();
    });
    after(async () => {
      await redis?.stop();
    });
    let run = 0;
    rpcBehaviour(`redis${kind.suffix}`, async () => {
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
}
