import { MemoryBus } from '../route/MemoryBus';

/**
 * An in-process deployment for tests of your own services: every client
 * created with {@link MemoryDeployment.options} shares one memory bus (keys,
 * channels, registry, durable queues) and nothing with any other deployment,
 * so tests running in one process do not see each other. The memory route
 * passes the same conformance suite as the redis route.
 *
 * @example
 * import { MemoryDeployment } from 'intracom/testing';
 * const deployment = new MemoryDeployment();
 * const users = new RedisRPCClient({ service: 'users', ...deployment.options });
 * const web = new RedisRPCClient({ service: 'web', ...deployment.options });
 */
export class MemoryDeployment {
  /** Spread into the options of RedisClient, RedisRPCClient or a RedisClient given to RedisMutex. */
  readonly options: { readonly route: 'memory'; readonly memoryBus: MemoryBus };

  constructor() {
    this.options = Object.freeze({ route: 'memory' as const, memoryBus: new MemoryBus() });
  }
}
