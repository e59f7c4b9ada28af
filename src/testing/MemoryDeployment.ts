import { MEMORY_BUS_OPTION, MemoryBus } from '../route/MemoryBus';

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
  /**
   * Spread into the options of RedisClient or RedisRPCClient (or of the
   * RedisClient given to RedisMutex): `route: 'memory'` plus this
   * deployment's bus, which the spread carries under a key of its own and
   * nothing else exposes.
   */
  readonly options: { readonly route: 'memory' };

  constructor() {
    this.options = Object.freeze({ route: 'memory' as const, [MEMORY_BUS_OPTION]: new MemoryBus() });
  }
}
