import { IntracomError } from './IntracomError';

/**
 * The Redis reached is not the kind of deployment the connection describes:
 * a plain `redis://` URL (or ioredis options) that lands on a Redis Cluster
 * node, for example. Nothing was set up; connect again with a connection
 * that names the topology (`redis+cluster://`, `{ cluster: [...] }`, an
 * ioredis `Cluster`).
 */
export class TopologyError extends IntracomError {
  constructor(target: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_TOPOLOGY', `the Redis at ${target} ${reason}`, options);
  }
}
