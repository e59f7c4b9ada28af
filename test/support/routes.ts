/** Runs a block of tests once on the memory route and once on a real Redis, with options that isolate each run. */
import type { RedisClientOptions } from '../../src/client/RedisClientOptions';
import { MemoryBus } from '../../src/route/MemoryBus';
import { startRedis, type TestRedis } from './redis-server';

/** Options of a client of `service` on the route under test (a private MemoryBus, or the fixture's Redis and namespace). */
export type RouteOptionsOf = (service: string) => RedisClientOptions;

/** `describe(`${title} on the memory route`)` and the same on the redis route; `body` gets the options builder. */
export function onEachRoute(title: string, body: (options: RouteOptionsOf, route: 'memory' | 'redis') => void): void {
  for (const route of ['memory', 'redis'] as const) {
    describe(`${title} on the ${route} route`, function () {
      this.timeout(20_000);
      let redis: TestRedis | undefined;
      const bus = new MemoryBus();
      before(async () => {
        if (route === 'redis') redis = await startRedis();
      });
      after(async () => redis?.stop());
      body((service) => (redis === undefined ? { service, route: 'memory', memoryBus: bus } : { service, redis: redis.url, namespace: redis.namespace }), route);
    });
  }
}
