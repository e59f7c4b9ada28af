import type { Logger } from 'pino';
import type { RedisClient } from '../client/RedisClient';
import type { RedisConnection } from '../route/connection';
import type { OptionNames } from '../../vars/options';

/** Options of {@link RedisMutex}; any other name is refused with ValidationError, naming it. */
export interface RedisMutexOptions {
  /**
   * Redis to use: a URL, ioredis options, an existing ioredis instance, or a
   * connected-or-not {@link RedisClient} on the `redis` route (its command
   * connection is shared) or on the `memory` route (the locks live on its
   * bus, for the instances of one process). A connection given as a URL or options is created,
   * set to fail fast while Redis is unreachable (no offline queue), and
   * closed by `close()`; an ioredis instance or a RedisClient stays yours to
   * close. Required.
   */
  redis: RedisConnection | RedisClient;
  /**
   * Prefix of every key, so that several deployments can share one Redis.
   * @default the RedisClient's namespace when `redis` is a RedisClient, else ''
   */
  namespace?: string;
  /**
   * The node id recorded as `takenBy` by `acquire`, `tryAcquire` and
   * `withMutex` when their `nodeId` option is not given (`P` takes it as an
   * argument, as in OpenTera's P/V).
   * @default `<service>:<instanceId>` of the RedisClient, else `<hostname>:<pid>`
   */
  nodeId?: string;
  /**
   * A pino logger; the mutex logs through `logger.child({ module: 'mutex', nodeId })`.
   * @default the RedisClient's logger when `redis` is a RedisClient (as its
   * `module: 'mutex'`), else pino on stderr at level `warn` (or
   * `INTRACOM_LOG_LEVEL`); see docs/logging.md
   */
  logger?: Logger;
  /**
   * Longest wait for Redis's answer to one command, in ms. When it passes,
   * the call rejects with RedisUnavailableError (the outcome is unknown; a
   * lock taken by a late reply is released as soon as that reply arrives).
   * @default 2000
   */
  commandTimeoutMs?: number;
  /**
   * How long `close()` may take, in ms: releasing the held locks and closing
   * a connection created here end within it even when Redis is unreachable
   * or does not answer; a lock not released by then is logged and left to
   * expire at its timeout.
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * Lease of `acquire`, `tryAcquire` and `withMutex` when their `timeoutMs`
   * option is not given, in ms: Redis releases the lock after this time
   * unless it is extended.
   * @default 10000
   */
  defaultTimeoutMs?: number;
  /**
   * How long `acquire` and `withMutex` wait for a held mutex by default, in
   * ms, before rejecting with AcquireTimeoutError. `Infinity` waits until the
   * signal aborts.
   * @default 10000
   */
  waitMs?: number;
  /**
   * Pause between two attempts of a waiting acquire, in ms (shortened when
   * the holder's lock expires sooner). A waiter is handed the mutex by the
   * release; its own attempts renew its place in the queue and bound how long
   * a lost notice or an expired holder can delay it.
   * @default 50
   */
  retryDelayMs?: number;
  /**
   * Random extra pause added to each `retryDelayMs`, from 0 to this many ms,
   * so that waiting nodes do not retry in lockstep.
   * @default 50
   */
  retryJitterMs?: number;
  /**
   * With automatic refresh, a lock is extended every `refreshRatio x timeout`
   * ms (so one late or failed refresh still leaves time for the next one).
   * Between 0.05 and 0.9.
   * @default 0.33
   */
  refreshRatio?: number;
}

/** Per-call options of `acquire`, `tryAcquire` and `withMutex`. */
export interface AcquireOptions {
  /**
   * The holder's node id, recorded as `takenBy`.
   * @default the RedisMutex's `nodeId`
   */
  nodeId?: string;
  /**
   * Lease in ms: Redis releases the lock after this time unless it is
   * extended (by `extend` or automatic refresh).
   * @default the RedisMutex's `defaultTimeoutMs` (10000)
   */
  timeoutMs?: number;
  /**
   * How long to wait for a held mutex, in ms (`acquire` and `withMutex`
   * only; `tryAcquire` never waits). `0` tries once; `Infinity` waits until
   * `signal` aborts.
   * @default the RedisMutex's `waitMs` (10000)
   */
  waitMs?: number;
  /**
   * Pause between attempts, in ms.
   * @default the RedisMutex's `retryDelayMs` (50)
   */
  retryDelayMs?: number;
  /**
   * Random extra pause per attempt, 0 to this many ms.
   * @default the RedisMutex's `retryJitterMs` (50)
   */
  retryJitterMs?: number;
  /**
   * Stops waiting: the call rejects with AcquireAbortedError and nothing is
   * held.
   * @default none
   */
  signal?: AbortSignal;
  /**
   * Extend the lock automatically every `refreshRatio x timeoutMs` until it
   * is released; the lock's signal fires if an extension finds it lost or
   * none succeeds before it expires.
   * @default false for `acquire` and `tryAcquire`, true for `withMutex`
   */
  autoRefresh?: boolean;
}

/** The name of every option of RedisMutex, and of one acquire: any other is refused. */
export const MUTEX_OPTION_NAMES: OptionNames<RedisMutexOptions> = {
  redis: true,
  namespace: true,
  nodeId: true,
  logger: true,
  commandTimeoutMs: true,
  closeTimeoutMs: true,
  defaultTimeoutMs: true,
  waitMs: true,
  retryDelayMs: true,
  retryJitterMs: true,
  refreshRatio: true,
};
export const ACQUIRE_OPTION_NAMES: OptionNames<AcquireOptions> = { nodeId: true, timeoutMs: true, waitMs: true, retryDelayMs: true, retryJitterMs: true, signal: true, autoRefresh: true };

/** The defaults of every optional option, in one place. */
export const DEFAULT_MUTEX_OPTIONS = {
  namespace: '',
  commandTimeoutMs: 2000,
  closeTimeoutMs: 5000,
  defaultTimeoutMs: 10_000,
  waitMs: 10_000,
  retryDelayMs: 50,
  retryJitterMs: 50,
  refreshRatio: 0.33,
} as const;
