import type { Logger } from 'pino';
import type { RedisClient } from '../client/RedisClient';
import type { RedisClientOptions } from '../client/RedisClientOptions';
import type { QueryQueueOptions } from '../queues/QueryQueueOptions';
import type { RpcSpread } from './RpcCaller';
import type { OptionNames } from '../../vars/options';

/** The RPC settings, common to both ways of creating a {@link RedisRPCClient}. */
export interface RpcOptions {
  /**
   * Time a call may take, in ms, unless the call sets its own `timeoutMs`.
   * One timeout per call, covering everything (finding an instance, retries).
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Handlers of one served target (a service or a module) that may run at
   * the same time on this instance; further requests queue.
   * @default 64
   */
  concurrency?: number;
  /**
   * Requests of one served target that may wait for a free handler slot;
   * beyond that the instance refuses them and the caller tries another
   * instance (ServiceBusyError when every instance refuses).
   * @default 1024
   */
  maxQueued?: number;
  /**
   * On `close()`, how long handlers in progress may take to finish, in ms;
   * then their signals fire and the client closes anyway. It bounds the
   * whole close (after `queryGraceMs`): leaving the registry, stopping the
   * consumers and closing the connections end within it even when Redis is
   * unreachable, abandoning what Redis did not answer (logged).
   * @default 5000
   */
  closeTimeoutMs?: number;
  /**
   * How often the caller checks that the instances handling its pending
   * calls are still subscribed (a publish of a probe that reaches nobody
   * means the instance is gone), in ms. A call whose instance died fails
   * within about this time with ConnectionLostError, or is retried on
   * another instance when the function is idempotent.
   * @default 1000
   */
  probeIntervalMs?: number;
  /**
   * Requests bound for one instance, and replies bound for one caller, leave
   * as a frame as soon as this many are queued, instead of all at the end of
   * the tick: the other side starts on the first slice while this side
   * prepares the next, so both work at once. Smaller slices cost more writes,
   * wake-ups and parses per call; larger ones keep the other side waiting
   * (docs/benchmarks.md has the measurements).
   * @default 64
   */
  sliceSize?: number;
  /**
   * How calls are spread over the instances of the service (or module) they
   * go to:
   * - `'burst'`: the calls this client makes to one target within one tick
   *   go to one instance, up to `sliceSize` of them: a burst, which leaves as
   *   one frame however many instances serve the target, so the cost per
   *   call stays flat as the service scales out. Each burst goes to the
   *   instance this client has given the fewest calls, skipping one that
   *   holds a burst more unanswered calls than another (a slow or stuck
   *   instance gets calls as it answers them, not an equal share of the
   *   calls in flight), and with two or more instances giving none more
   *   than half of this client's calls in flight; one whose call timed out
   *   gets one call at a time until it answers. Instances stay within
   *   about a burst of each other in calls received while they keep up. A
   *   lone call per tick is a burst of one,
   *   spread as per call (see docs/rpc.md for fairness and tail latency).
   * - `'call'`: each call goes to the next instance, round-robin, even
   *   within a tick and whatever the instances hold, at one frame per
   *   instance and tick (the cost per call rises with the number of
   *   instances).
   * @default 'burst'
   */
  spread?: RpcSpread;
  /**
   * How long the list of a target's live instances is cached, in ms; it is
   * also refreshed when a request reaches nobody.
   * @default 1000 (the registry heartbeat cadence)
   */
  instanceCacheMs?: number;
  /**
   * A pino logger; RPC logs through a child bound to `service`, `instanceId`
   * and `module: 'rpc'` (durable queries: `module: 'queues'`).
   * @default the client's logger
   */
  logger?: Logger;
  /** Settings of the durable query types (FIRE_AND_FORGET, BROADCAST). */
  queues?: QueryQueueOptions;
  /**
   * The services allowed to call the functions (and send the SYNC and ASYNC
   * queries) this instance serves. Each gets its own request channel
   * (`<topic>.<instanceId>.from.<caller>`), announced in the registry, so the
   * generated ACLs ({@link aclFor}) let a caller publish only on its own one:
   * it reads no other caller's requests, and the sending service a handler
   * sees (`context.callerService`) is known from the channel, not claimed.
   * Another service's call fails at once with PermissionError. Undefined:
   * one open channel that any service may call on (its name is then its claim).
   * @default undefined
   */
  callers?: readonly string[];
  /**
   * Take the `local` shortcut: queries (FIRE_AND_FORGET, ASYNC, SYNC) to a
   * service hosted in this process by a client that also set this are direct
   * calls, with no encoding and no Redis. A FIRE_AND_FORGET taken this way is
   * not stored, so it does not survive a crash; BROADCAST never takes it.
   * @default false
   */
  localShortcut?: boolean;
  /**
   * On `close()`, how long pending ASYNC and SYNC queries of this client are
   * awaited before they are cancelled (state ERROR, CancelledError), in ms.
   * @default 5000
   */
  queryGraceMs?: number;
}

/** Options of a {@link RedisRPCClient} that creates (and owns) its own {@link RedisClient}. */
export interface StandaloneRpcOptions extends RedisClientOptions, RpcOptions {
  /** Absent: the RPC client creates its own RedisClient from the other options, and closes it. */
  client?: undefined;
}

/** Options of a {@link RedisRPCClient} built on an existing {@link RedisClient} (which stays yours to close). */
export interface SharedRpcOptions extends RpcOptions {
  /** The client to use; `close()` of the RPC client leaves it open. */
  client: RedisClient;
}

/**
 * Options of {@link RedisRPCClient}: the same connection options as
 * RedisClient (`service`, `redis`, `route`, `namespace`, ...), or `client`,
 * an existing RedisClient; plus the RPC settings of {@link RpcOptions}. Any
 * other name is refused with ValidationError, naming it.
 */
export type RedisRPCClientOptions = StandaloneRpcOptions | SharedRpcOptions;

/** Per-call options (see `RedisRPCClient.with`). */
export interface CallOptions {
  /**
   * Time this call may take, in ms.
   * @default the client's `timeoutMs`
   */
  timeoutMs?: number;
  /** Cancels the call: it rejects with CancelledError and the handler's signal fires. */
  signal?: AbortSignal;
  /**
   * Retry on another instance when the instance handling the call dies
   * mid-call.
   * @default the function's `idempotent` declaration, else false
   */
  idempotent?: boolean;
}

/** The name of every RPC option: with `client`, these and `client` are all a RedisRPCClient takes; without, the RedisClient's options too. */
export const RPC_OPTION_NAMES: OptionNames<RpcOptions> = {
  timeoutMs: true,
  concurrency: true,
  maxQueued: true,
  closeTimeoutMs: true,
  probeIntervalMs: true,
  sliceSize: true,
  spread: true,
  instanceCacheMs: true,
  logger: true,
  queues: true,
  localShortcut: true,
  queryGraceMs: true,
  callers: true,
};

/** The defaults of every optional RPC option, in one place. */
export const DEFAULT_RPC_OPTIONS = {
  timeoutMs: 10_000,
  concurrency: 64,
  maxQueued: 1024,
  closeTimeoutMs: 5_000,
  probeIntervalMs: 1_000,
  instanceCacheMs: 1_000,
  sliceSize: 64,
  spread: 'burst',
  localShortcut: false,
  queryGraceMs: 5_000,
} as const;
