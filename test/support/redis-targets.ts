/**
 * The Redis deployments a parameterised suite runs on: one server (the
 * fixture of redis-server.ts), a Redis Cluster of 3 masters and 3 replicas,
 * and Sentinel with 1 master, 1 replica and 3 sentinels (redis-topologies.ts).
 * The same suite body runs on each; only the connection differs.
 *
 * `INTRACOM_TEST_TOPOLOGIES=0` keeps to one server (the cluster and Sentinel
 * need the `redis-server` and `redis-cli` binaries; without them those
 * variants are skipped).
 */
import Redis, { Cluster } from 'ioredis';
import type { RedisCommands } from '../../src/route/connection';
import { startRedis } from './redis-server';
import { cluster, sentinel, topologiesAvailable } from './redis-topologies';

export interface TestTarget {
  /** `redis`, `cluster` or `sentinel`. */
  readonly kind: 'redis' | 'cluster' | 'sentinel';
  /** The URL a client is given (`redis://`, `redis+cluster://`, `redis+sentinel://`). */
  readonly url: string;
  /** A namespace unique to this target, for isolation. */
  readonly namespace: string;
  /** A new raw ioredis connection to the deployment (a Cluster on a cluster), for inspection; disconnect it after. */
  open(): RedisCommands;
  /** Releases what this target started (the topologies themselves stop at the end of the run). */
  stop(): Promise<void>;
}

/** One deployment kind, started on demand. */
export interface TargetKind {
  readonly kind: TestTarget['kind'];
  /** ` on a cluster`, ` on sentinel`, or '' for one server: appended to suite titles. */
  readonly suffix: string;
  start(): Promise<TestTarget>;
}

const single: TargetKind = {
  kind: 'redis',
  suffix: '',
  async start() {
    const redis = await startRedis();
    return { kind: 'redis', url: redis.url, namespace: redis.namespace, open: () => new Redis(redis.url), stop: () => redis.stop() };
  },
};

const onCluster: TargetKind = {
  kind: 'cluster',
  suffix: ' on a cluster',
  async start() {
    const c = await cluster();
    return { kind: 'cluster', url: c.url, namespace: c.namespace(), open: () => new Cluster(c.seeds), stop: async () => undefined };
  },
};

const onSentinel: TargetKind = {
  kind: 'sentinel',
  suffix: ' on sentinel',
  async start() {
    const s = await sentinel();
    return { kind: 'sentinel', url: s.url, namespace: s.namespace(), open: () => new Redis({ sentinels: s.sentinels, name: s.name }), stop: async () => undefined };
  },
};

/** The deployments to run a suite on: one server, then cluster and Sentinel when available. */
export function testTargets(): TargetKind[] {
  if (process.env.INTRACOM_TEST_TOPOLOGIES === '0' || !topologiesAvailable) return [single];
  return [single, onCluster, onSentinel];
}
