import type { Logger } from 'pino';
import type { AuthOptions } from '../envelope/AuthOptions';
import type { Codec } from '../envelope/codec';
import type { MemoryBus } from '../route/MemoryBus';
import type { RedisConnection } from '../route/connection';
import type { Route } from '../route/Route';
import type { DurabilityOptions } from '../route/RouteOptions';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../route/RouteOptions';
import type { OptionNames } from '../../vars/options';

/** Size limits applied on send and on receive. */
export interface LimitOptions {
  /**
   * Largest encoded message accepted, in bytes. A bigger one is refused on
   * publish with PayloadTooLargeError; a bigger frame received is counted as
   * malformed and skipped.
   * @default 1048576 (1 MiB)
   */
  maxPayloadBytes?: number;
  /**
   * Frames (messages coalesced within one tick) are split above this size, so
   * that a burst cannot trip Redis's `client-output-buffer-limit pubsub`. Must
   * not exceed `maxPayloadBytes` (a receiver refuses a bigger frame): a larger
   * value is refused at construction with ValidationError.
   * @default 262144 (256 KiB), or `maxPayloadBytes` when that is smaller
   */
  maxFrameBytes?: number;
}

/** The instance registry's timing. */
export interface RegistryOptions {
  /**
   * How often an instance refreshes its announcement, in ms.
   * @default 1000
   */
  heartbeatMs?: number;
  /**
   * How long an instance counts as live after its last heartbeat, in ms: a
   * crashed instance drops out of `instances()` within this time. Must exceed
   * `heartbeatMs`.
   * @default 5000
   */
  ttlMs?: number;
  /**
   * How long `connect()` waits, in ms, when another live process is
   * announced under the same `service` and `instanceId` (a rolling restart
   * that keeps the id): it starts nothing until that process closes (it
   * leaves the registry at once) or its announcement expires (a crashed one:
   * within its `ttlMs`), and past this rejects with InstanceIdInUseError.
   * Two processes under one id would run durable queries twice. 0: reject at
   * once.
   * @default 30000
   */
  instanceIdWaitMs?: number;
}

/** Options of {@link RedisClient}; any other name is refused with ValidationError, naming it. */
export interface RedisClientOptions {
  /** The service key of this instance (`users`, `TeraServer.UserManagerModule`). Required. */
  service: string;
  /**
   * Unique id of this instance; keep it across restarts when the instance
   * should get back what it missed (BROADCAST).
   * @default a random UUID
   */
  instanceId?: string;
  /**
   * Redis to use: a URL (`redis://`, `rediss://`, `redis+cluster://h1:p1,h2:p2`,
   * `redis+sentinel://s1:p1,s2:p2/<master>`), ioredis options (Sentinel with
   * `sentinels` and `name`), `{ cluster: [seeds] }`, or an existing ioredis
   * Redis or Cluster (which stays yours to close). Anything else is refused
   * with a ValidationError. Setting it makes `redis` the default route.
   */
  redis?: RedisConnection;
  /**
   * On a Redis Cluster, send per-service and per-instance channels with
   * sharded pub/sub (SPUBLISH/SSUBSCRIBE, one shard per message) under
   * hash-tagged names; patterns then see only the other topics. False sends
   * everything with classic pub/sub, which every node of the cluster carries.
   * Ignored off a cluster.
   * @default true
   */
  shardedPubSub?: boolean;
  /**
   * Replica acknowledgement of durable sends (Redis `WAIT` after each
   * append): what a failover may lose without it, see docs/operations.md.
   * @default { replicas: 0, timeoutMs: 1000 }
   */
  durability?: DurabilityOptions;
  /**
   * The route: `redis`, `memory` (in-process, no Redis), or a Route instance.
   * @default 'redis' when `redis` is set, else 'memory'
   */
  route?: 'redis' | 'memory' | Route;
  /**
   * @internal The bus of the memory route (the repository's tests); users
   * get a bus of their own from `intracom/testing`'s MemoryDeployment.
   * @default MemoryBus.shared (every memory client of the process)
   */
  memoryBus?: MemoryBus;
  /**
   * File where the memory route keeps its durable queues (FIRE_AND_FORGET and
   * BROADCAST streams, their groups and pending entries) across restarts:
   * restored when the bus's first route connects, written atomically when its
   * last one closes. A missing file starts empty; an unreadable one makes
   * `connect()` reject with a SnapshotError. One file per bus.
   * @default undefined (no snapshot: the memory queues end with the process)
   */
  memorySnapshotFile?: string;
  /**
   * Prefix of every key and channel, so that several deployments can share
   * one Redis (pub/sub ignores `db`).
   * @default ''
   */
  namespace?: string;
  /**
   * A pino logger; intracom logs through children of it bound to `service`,
   * `instanceId` and one `module` (`client`, `route`, `rpc`, `queues`,
   * `mutex`).
   * @default pino on stderr at level `warn` (or `INTRACOM_LOG_LEVEL`); see docs/logging.md
   */
  logger?: Logger;
  /**
   * The codec of messages and msgpack variables.
   * @default new MsgpackCodec()
   */
  codec?: Codec;
  /** Size limits. */
  limits?: LimitOptions;
  /**
   * Authenticated sources and payload encryption (docs/security.md): this
   * service's Ed25519 signing key, the public keys it trusts, the replay
   * window, AES-256-GCM keys. Keys come from here, or from files, or from
   * the `INTRACOM_AUTH_*` environment variables when this option is absent;
   * never from Redis.
   * @default none (frames are neither signed nor verified), unless the environment sets them
   */
  auth?: AuthOptions;
  /**
   * How long `connect()` may take, in ms, whatever step Redis stops
   * answering at (a RedisRPCClient's connect included): past it (a server that
   * accepts connections and never answers, a black-holed network, a Redis
   * frozen after the handshake) it rejects with
   * ConnectionError and leaves nothing retrying. The connections are then
   * cut rather than closed politely, which takes at most 100 ms more.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * How long `close()` may take, in ms. Within it the client leaves the
   * registry, drops its subscriptions and sends what is queued; when Redis is
   * unreachable or slow, what is left is abandoned (queued writes reject, the
   * registry entry expires after `registry.ttlMs`) and one warning lists it.
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * Handlers of one subscription that may be running (not yet settled) at
   * once. Past it, events of that subscription are shed (counted in
   * `stats().shed`, logged rate-limited) instead of piling up in memory:
   * pub/sub is at-most-once, and an unbounded backlog would only end with
   * Redis cutting the connection at its output-buffer limit. Synchronous
   * handlers never count. Per subscription: `subscribe(topic, handler, { maxInFlight })`.
   * @default 1000
   */
  maxInFlight?: number;
  /** Instance registry timing. */
  registry?: RegistryOptions;
}

/** The name of every option of RedisClient: any other is refused. */
export const CLIENT_OPTION_NAMES: OptionNames<RedisClientOptions> = {
  service: true,
  instanceId: true,
  redis: true,
  shardedPubSub: true,
  durability: true,
  route: true,
  memoryBus: 'internal',
  memorySnapshotFile: true,
  namespace: true,
  logger: true,
  codec: true,
  limits: true,
  connectTimeoutMs: true,
  closeTimeoutMs: true,
  maxInFlight: true,
  registry: true,
  auth: true,
};

/** The names of the options nested in `limits`, `registry` and `durability`. */
export const LIMIT_OPTION_NAMES: OptionNames<LimitOptions> = { maxPayloadBytes: true, maxFrameBytes: true };
export const REGISTRY_OPTION_NAMES: OptionNames<RegistryOptions> = { heartbeatMs: true, ttlMs: true, instanceIdWaitMs: true };
export const DURABILITY_OPTION_NAMES: OptionNames<DurabilityOptions> = { replicas: true, timeoutMs: true };

/** The defaults of every optional option, in one place. */
export const DEFAULT_CLIENT_OPTIONS = {
  namespace: '',
  shardedPubSub: true,
  limits: { maxPayloadBytes: 1024 * 1024, maxFrameBytes: 256 * 1024 },
  registry: { heartbeatMs: 1000, ttlMs: 5000, instanceIdWaitMs: 30_000 },
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  closeTimeoutMs: 5_000,
  maxInFlight: 1000,
} as const;
