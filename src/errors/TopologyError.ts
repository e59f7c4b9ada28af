import { ConnectionError } from './ConnectionError';

/**
 * The Redis reached is not the kind of deployment the connection describes:
 * a plain `redis://` URL (or ioredis options) that lands on a Redis Cluster
 * node, for example. A ConnectionError (nothing was set up; connect again
 * with a connection that names the topology: `redis+cluster://`,
 * `{ cluster: [...] }`, an ioredis `Cluster`), with its own code.
 */
export class TopologyError extends ConnectionError {
  constructor(target: string, reason: string, options?: { cause?: unknown }) {
    super(target, reason, options);
    Object.defineProperty(this, 'code', { value: 'ERR_TOPOLOGY', enumerable: true });
  }
}
