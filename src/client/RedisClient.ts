import { resolveAuth } from '../envelope/AuthOptions';
import type { FrameSealer } from '../envelope/FrameSealer';
import type { Sender } from '../envelope/sender';
import type { AuthenticationError } from '../errors/AuthenticationError';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Names } from '../../vars/names';
import type { VarDefinition, VarKeyArgs, VarValue } from '../../vars/types';
import { MsgpackCodec, type Codec } from '../envelope/codec';
import type { EventHeaders, EventMessage } from '../envelope/types';
import { checkName } from '../envelope/names';
import { unencodableReason } from '../envelope/sendable';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { ConnectionError } from '../errors/ConnectionError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { InstanceIdInUseError } from '../errors/InstanceIdInUseError';
import { PermissionError } from '../errors/PermissionError';
import { ValidationError } from '../errors/ValidationError';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { MalformedReports } from '../log/MalformedReports';
import { checkRedisConnection } from '../route/checkRedisConnection';
import { hasLoneSurrogate, patternProblem, topicProblem } from '../route/glob';
import { MEMORY_BUS_OPTION, MemoryBus } from '../route/MemoryBus';
import { MemoryRoute } from '../route/MemoryRoute';
import { RedisRoute } from '../route/RedisRoute';
import { DEFAULT_DURABILITY } from '../route/RouteOptions';
import { topologyOf } from '../route/connection';
import type { HeldInstanceId, Route, RouteStats, RouteStatus, Unsubscribe as RouteUnsubscribe } from '../route/Route';
import { beforeDeadline, withinMs } from '../route/withinMs';
import { timerMs } from './timerMs';
import { BurstClock } from './BurstClock';
import { EventSubscription, type EventHost } from './EventSubscription';
import { VERSION } from '../version';
import { CLIENT_OPTION_NAMES, DEFAULT_CLIENT_OPTIONS, DURABILITY_OPTION_NAMES, LIMIT_OPTION_NAMES, REGISTRY_OPTION_NAMES, type RedisClientOptions } from './RedisClientOptions';
import { nestedOptions, refuseUnknownOptions, type OptionNames } from '../../vars/options';
import { incrementOutOfRange, reachedOf } from '../route/incrementOutOfRange';
import { decodeVariable, describeVariableValue, encodeVariable, fitsVariable, receivedVariableValue } from './variableCodec';
import { describeValue } from '../../vars/describe';
import { newUuid } from '../envelope/ids';
import { defaultLogger, silence } from '../log/logger';

/** What an event handler receives beside the payload. */
export interface ReceivedEvent<P = unknown> extends EventMessage<P> {
  /** The topic (channel without namespace). */
  topic: string;
  /** The pattern that matched, for `psubscribe`. */
  pattern?: string;
  /**
   * Who published the event as this receiver knows it: with authentication
   * on (docs/security.md), `verified` is true and `service` is the signer,
   * which is never another service than `headers.serviceName` (a frame
   * claiming otherwise is refused).
   */
  sender: Sender;
}

/** Handles one event; may be async (a rejection is logged, never thrown into delivery). */
export type EventHandler<P = unknown> = (payload: P, event: ReceivedEvent<P>) => void | Promise<void>;

/** Options of one subscription. */
export interface SubscribeOptions {
  /**
   * Handlers of this subscription that may be running at once; past it,
   * events are shed and counted (`stats().shed`).
   * @default the client's `maxInFlight` (1000)
   */
  maxInFlight?: number;
}

/** Stops a subscription (the Redis subscription goes with its last handler). */
export type Unsubscribe = () => Promise<void>;

/** One live instance of a service, as it announced itself. */
export interface InstanceInfo {
  /** The service key it runs as. */
  service: string;
  /** Its instance id (unique per process by default). */
  instanceId: string;
  /** The host name of its machine. */
  host: string;
  /** Its process id on that host. */
  pid: number;
  /** Start time, ms since the epoch. */
  startedAt: number;
  /** intracom version it runs. */
  version: string;
  /** Counters of overload, refreshed with every heartbeat: what an operator sees in `intracom status`. */
  load?: { shed: number; malformed: number; handlersInFlight: number; authRefused?: number };
}

/** A change of a watched variable. */
export interface VariableChange<T = unknown> {
  /** The parameter of a keyed variable. */
  key?: string;
  /** The new value; null when deleted, and always null for a secret or confidential variable (read it with `get`). */
  value: T | null;
  /** True for a secret or confidential variable: the change event carried no value. */
  secret: boolean;
  /** True when the variable was deleted. */
  deleted: boolean;
  /** The service that changed it. */
  changedBy: string;
  /** Who published the change as this receiver knows it (`verified` with authentication on; see ReceivedEvent.sender). */
  sender: Sender;
}

/** Options of `set`. */
export interface SetOptions {
  /** Time to live in ms; overrides the variable's `ttlMs`. */
  ttlMs?: number;
}

/** Counters of a client. */
export interface ClientStats extends RouteStats {
  /** Messages that decoded but were not valid events (counted, logged, skipped). */
  invalidEvents: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
  /** Events dropped because their subscription had `maxInFlight` handlers running (see RedisClientOptions.maxInFlight). */
  shed: number;
  /** Handlers running now, over every subscription. */
  handlersInFlight: number;
  /** Events of {@link RedisClient.publishAndForget} that could not be sent (refused or their write failed); each is also logged and emitted as `error`. */
  unsentEvents: number;
}

/** The payload of a variable change event; a secret variable's carries no `value` and `secret: true`. */
interface VariableChangeWire {
  key: string | null;
  value?: unknown;
  deleted: boolean;
  secret?: true;
}

const SUBSCRIBE_OPTION_NAMES: OptionNames<SubscribeOptions> = { maxInFlight: true };
const SET_OPTION_NAMES: OptionNames<SetOptions> = { ttlMs: true };

/** Definitions already checked by {@link RedisClient.resolveVariable}, so that the hot path checks each one once. */
const checkedVariables = new WeakSet<VarDefinition>();

/**
 * One client per service instance: typed shared variables, events, and the
 * instance registry, over Redis or in memory.
 *
 * Events: `ready` (connected, and again after a reconnect), `reconnecting`,
 * `error` (emitted only when listened to; otherwise logged), `malformed`
 * (MalformedMessageError: bad bytes or a bad event, skipped), `close`.
 *
 * @example
 * const client = new RedisClient({ service: 'users', redis: 'redis://127.0.0.1:6379' });
 * await client.connect();
 * await client.subscribe('module.users.events', (payload) => console.log(payload));
 * await client.publish('module.users.events', { online: 'u-1' });
 * await client.close();
 */
export class RedisClient extends EventEmitter {
  /** Service key of this instance. */
  readonly service: string;
  /** Id of this instance. */
  readonly instanceId: string;
  /** Key and channel names of this deployment. */
  readonly names: Names;
  /** @internal The route under this client: how bytes move. The layers above use only its contract (Route). */
  readonly route: Route;
  /** The codec of messages and msgpack variables. */
  readonly codec: Codec;
  /** The client's logger: a child of the one given, bound to `service`, `instanceId` and `module: 'client'`. */
  readonly logger: Logger;
  /** The logger bound to this instance, without a module. */
  private readonly instanceLogger: Logger;
  /** Size limits in force. */
  readonly limits: Readonly<{ maxPayloadBytes: number; maxFrameBytes: number }>;
  /** The route's logger, silenced with the client's own once close() has returned. */
  private readonly routeLogger: Logger;
  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;
  private readonly heartbeatMs: number;
  private readonly instanceTtlMs: number;
  private readonly instanceIdWaitMs: number;
  /** @internal How long connect() waited for another process to leave this instance id, in ms (a RedisRPCClient's connect adds it to its own limit). */
  instanceIdWaitedMs = 0;
  /**
   * Whether the registry may hold this client's announcement: false until an
   * announcement was sent, and while another process holds the id, so that
   * close() never withdraws that process's entry.
   */
  private mayHoldId = false;
  /** Ends the pause between two tries for a taken instance id (close() calls it). */
  private wakeIdWait: (() => void) | undefined;
  private readonly ownsRoute: boolean;
  private readonly closeTimeoutMs: number;
  /** @internal What connect() may take, in ms (a RedisRPCClient's connect keeps within it too). */
  readonly connectTimeoutMs: number;
  private readonly maxInFlight: number;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly info: InstanceInfo;
  private announcement: Buffer;
  private readonly subscriptions = new Set<Unsubscribe>();
  /** What every event subscription of this client shares (one object, not closures per subscription). */
  private readonly eventHost: EventHost;
  private closing: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  private invalidEvents = 0;
  /** Invalid events and variable changes: counted one by one, reported once per channel and turn (a frame of a million costs one error). */
  private readonly invalidReports = new MalformedReports(
    (error) => this.reportMalformed(error),
    (error) => this.warnings.error('malformed listener', { err: error }, 'a malformed listener threw'),
  );
  private handlerErrors = 0;
  private shed = 0;
  private handlersInFlight = 0;
  private unsentEvents = 0;
  /** publishAndForget's one outcome callback: no promise and no closure per event. */
  private readonly forgotten = (topic: string, error: unknown): void => {
    if (error === undefined) return;
    this.unsentEvents += 1;
    this.warnings.error(`unsent ${topic}`, { err: error, topic }, 'an event of publishAndForget could not be sent');
    this.reportError(error instanceof Error ? error : new Error(String(error)));
  };
  /** Per topic: its channel name and the headers shared by the events of the current millisecond. */
  private readonly topics = new Map<string, { channel: string; ms: number; headers: EventHeaders }>();
  /** Dates events: a burst reads the clock once per 32 events, not once each. */
  private readonly clock = new BurstClock();

  constructor(options: RedisClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describeValue(options)}`);
    refuseUnknownOptions('RedisClient', options, CLIENT_OPTION_NAMES);
    const limitOptions = nestedOptions('RedisClient', 'limits', options.limits, LIMIT_OPTION_NAMES);
    const registryOptions = nestedOptions('RedisClient', 'registry', options.registry, REGISTRY_OPTION_NAMES);
    const durabilityOptions = nestedOptions('RedisClient', 'durability', options.durability, DURABILITY_OPTION_NAMES);
    this.service = checkName('service', options.service);
    this.instanceId = options.instanceId === undefined ? newUuid() : checkName('instanceId', options.instanceId, 'instanceId');
    const namespace = options.namespace ?? DEFAULT_CLIENT_OPTIONS.namespace;
    const shardedPubSub = options.shardedPubSub ?? DEFAULT_CLIENT_OPTIONS.shardedPubSub;
    if (typeof shardedPubSub !== 'boolean') throw new ValidationError(`shardedPubSub must be a boolean; received ${describeValue(shardedPubSub)}`);
    const onCluster = (options.route ?? (options.redis !== undefined ? 'redis' : 'memory')) === 'redis' && topologyOf(options.redis) === 'cluster';
    this.names = checked('namespace', namespace, () => new Names(namespace, { shardChannels: onCluster && shardedPubSub }));
    this.eventHost = {
      names: this.names,
      invalid: (received, reason) => {
        this.invalidEvents += 1;
        this.invalidReports.add(received, reason);
      },
      shed: (received, maxInFlight) => {
        this.shed += 1;
        this.warnings.warn(`shed ${received}`, { channel: received, maxInFlight }, 'subscription at maxInFlight handlers; events shed');
      },
      running: (by) => void (this.handlersInFlight += by),
      handlerFailed: (error, received) => this.reportHandlerError(error, received),
      stopped: (unsubscribe) => void this.subscriptions.delete(unsubscribe),
    };
    const maxPayloadBytes = positiveInteger('limits.maxPayloadBytes', limitOptions.maxPayloadBytes ?? DEFAULT_CLIENT_OPTIONS.limits.maxPayloadBytes);
    // a receiver refuses a frame over maxPayloadBytes, so frames are never built bigger: an explicit larger maxFrameBytes is refused, the default follows
    const maxFrameBytes =
      limitOptions.maxFrameBytes === undefined ? Math.min(DEFAULT_CLIENT_OPTIONS.limits.maxFrameBytes, maxPayloadBytes) : positiveInteger('limits.maxFrameBytes', limitOptions.maxFrameBytes);
    if (maxFrameBytes > maxPayloadBytes) {
      throw new ValidationError(`limits.maxFrameBytes must not exceed limits.maxPayloadBytes (${maxPayloadBytes}), which is what a receiver accepts; received ${maxFrameBytes}`);
    }
    const limits = { maxPayloadBytes, maxFrameBytes };
    this.limits = Object.freeze(limits);
    const registry = { ...DEFAULT_CLIENT_OPTIONS.registry, ...registryOptions };
    this.heartbeatMs = timerMs('registry.heartbeatMs', registry.heartbeatMs, 1);
    this.instanceTtlMs = positiveInteger('registry.ttlMs', registry.ttlMs);
    if (this.instanceTtlMs <= this.heartbeatMs) {
      throw new ValidationError(`registry.ttlMs must exceed registry.heartbeatMs (${this.heartbeatMs}); received ${this.instanceTtlMs}`);
    }
    this.instanceIdWaitMs = timerMs('registry.instanceIdWaitMs', registry.instanceIdWaitMs, 0);
    const connectTimeoutMs = timerMs('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CLIENT_OPTIONS.connectTimeoutMs, 1);
    this.connectTimeoutMs = connectTimeoutMs;
    this.closeTimeoutMs = timerMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_CLIENT_OPTIONS.closeTimeoutMs, 0);
    this.maxInFlight = positiveInteger('maxInFlight', options.maxInFlight ?? DEFAULT_CLIENT_OPTIONS.maxInFlight);
    if (options.codec !== undefined && (typeof options.codec?.encode !== 'function' || typeof options.codec?.decode !== 'function')) {
      throw new ValidationError(`codec must have encode() and decode(); received ${describeValue(options.codec)}`);
    }
    this.codec = options.codec ?? new MsgpackCodec();
    if (options.logger !== undefined && typeof options.logger?.child !== 'function') {
      throw new ValidationError(`logger must be a pino logger (or one with child()); received ${describeValue(options.logger)}`);
    }
    // bound once here: every module's lines carry service and instance, and one `module` key each
    this.instanceLogger = (options.logger ?? defaultLogger()).child({ service: this.service, instanceId: this.instanceId });
    this.logger = this.moduleLogger('client');
    this.warnings = new RateLimitedLog(this.logger);

    const durability = { ...DEFAULT_DURABILITY, ...durabilityOptions };
    if (!Number.isSafeInteger(durability.replicas) || durability.replicas < 0) throw new ValidationError(`durability.replicas must be an integer >= 0; received ${describeValue(durability.replicas)}`);
    timerMs('durability.timeoutMs', durability.timeoutMs, 1);
    const auth = resolveAuth(this.service, options.auth);
    this.routeLogger = this.moduleLogger('route');
    const routeOptions = { codec: this.codec, limits, logger: this.routeLogger, names: this.names, connectTimeoutMs, durability, auth };
    const routeChoice = options.route ?? (options.redis !== undefined ? 'redis' : 'memory');
    if (routeChoice === 'redis') {
      if (options.redis === undefined) throw new ValidationError('route "redis" needs the redis option (a URL, ioredis options, cluster seeds, or an ioredis Redis or Cluster); received undefined');
      this.route = new RedisRoute(checkRedisConnection('redis', options.redis), routeOptions);
      this.ownsRoute = true;
    } else if (routeChoice === 'memory') {
      const bus = (options as { [MEMORY_BUS_OPTION]?: MemoryBus })[MEMORY_BUS_OPTION] ?? options.memoryBus ?? MemoryBus.shared;
      this.route = new MemoryRoute(routeOptions, bus, { snapshotFile: options.memorySnapshotFile });
      this.ownsRoute = true;
    } else if (typeof routeChoice === 'object' && routeChoice !== null && typeof routeChoice.publish === 'function') {
      if (auth !== undefined) throw new ValidationError('auth needs a route intracom builds ("redis" or "memory"): a custom route neither seals nor opens frames; received a custom route');
      this.route = routeChoice;
      this.ownsRoute = false;
    } else {
      throw new ValidationError(`route must be "redis", "memory" or a Route; received ${describeValue(routeChoice)}`);
    }
    this.route.on('ready', () => this.emit('ready'));
    this.route.on('reconnecting', (info) => this.emit('reconnecting', info));
    this.route.on('error', (error: Error) => this.reportError(error));
    this.route.on('malformed', (error: MalformedMessageError | AuthenticationError) => this.reportMalformed(error));

    // startedAt tells two incarnations under one id apart (the id check of connect(), InstanceDirectory): unique per client of a process too
    const startedAt = Math.max(Date.now(), lastStartedAt + 1);
    lastStartedAt = startedAt;
    // load present from the start: the bytes connect() announces stay the same across its retries, so a retry knows its own entry
    this.info = { service: this.service, instanceId: this.instanceId, host: hostname(), pid: process.pid, startedAt, version: VERSION, load: { shed: 0, malformed: 0, handlersInFlight: 0 } };
    this.announcement = this.codec.encode(this.info);
  }

  /** @internal A logger for one module of this instance (`rpc`, `queues`, `mutex`): service and instance bound once, one `module` key. */
  moduleLogger(module: string): Logger {
    return this.instanceLogger.child({ module });
  }

  /** `idle`, `connecting`, `ready`, `reconnecting`, `closing` or `closed`. */
  get status(): RouteStatus {
    return this.route.status;
  }

  /**
   * Connects the route, announces this instance and starts its heartbeat.
   * Resolves when ready. Rejects with ConnectionError (the server's reason as
   * `cause`: refused, an ACL denial, NOAUTH, a MOVED reply) when Redis cannot
   * be used, at the latest after `connectTimeoutMs`; a failed connect can be
   * retried. While another live process is announced under the same service
   * and instance id, it waits for that one to leave (close, or expire after
   * its `registry.ttlMs`), and rejects with InstanceIdInUseError after
   * `registry.instanceIdWaitMs`.
   */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new NotConnectedError('connect', 'closed'));
    this.connecting ??= (async () => {
      const deadline = performance.now() + this.connectTimeoutMs;
      try {
        await this.route.connect();
        if (this.closing) throw new NotConnectedError('connect', 'closed', 'close() was called while it connected');
        await this.takeInstanceId(deadline);
      } catch (error) {
        this.connecting = undefined; // a failed connect can be retried
        throw connectionFailure(error, this.route);
      }
      // close() during the announcement: it withdraws after this; no heartbeat may start
      if (this.closing) return;
      this.logger.debug({ route: this.route.kind, heartbeatMs: this.heartbeatMs }, 'connected; instance announced in the registry');
      this.heartbeat = setInterval(() => {
        this.beat().catch((error: unknown) => {
          // a beat cut short by close() is not retried: close()'s own warning covers the registry entry
          if (!this.closing) this.warnings.warn('heartbeat', { err: error }, 'heartbeat failed; will retry');
        });
      }, this.heartbeatMs);
      this.heartbeat.unref();
    })();
    return this.connecting;
  }

  /**
   * Leaves the registry at once, drops every subscription, sends what is
   * queued and closes the connections (those it created), within
   * `closeTimeoutMs` (or `options.timeoutMs`): when Redis is unreachable,
   * what cannot be done in time is abandoned and one warning says what.
   * Never rejects.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs === undefined || !(options.timeoutMs >= 0) ? this.closeTimeoutMs : options.timeoutMs;
    return this.closeWithin(timeoutMs, timeoutMs);
  }

  /**
   * @internal close() with what is left of a caller's budget (`timeoutMs`),
   * its warning naming the caller's whole limit (`limitMs`): a RedisRPCClient
   * that closes its own client passes both.
   */
  closeWithin(timeoutMs: number, limitMs: number): Promise<void> {
    this.closing ??= (async () => {
      const deadline = performance.now() + timeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
      if (this.heartbeat) clearInterval(this.heartbeat);
      this.wakeIdWait?.();
      const abandoned: string[] = [];
      if (this.connecting !== undefined) {
        // a connect still waiting for Redis is cut short by closing the route
        if (this.route.status === 'connecting' && this.ownsRoute) void this.route.close(0);
        if (!(await withinMs(this.connecting, left()))) abandoned.push('the connect in progress');
      }
      if (this.route.status === 'ready') {
        const leaving = (async () => {
          // never another process's entry: a client that waited for its id in vain has nothing to withdraw
          if (this.mayHoldId) await this.route.withdraw(this.service, this.instanceId).catch((error: unknown) => this.logger.warn({ err: error }, 'could not leave the registry'));
          await Promise.allSettled([...this.subscriptions].map((unsubscribe) => unsubscribe()));
        })();
        if (!(await withinMs(leaving, left()))) abandoned.push(`leaving the registry and ${this.subscriptions.size} subscription(s)`);
      } else if (this.connecting !== undefined) {
        abandoned.push(`leaving the registry (Redis is ${this.route.status}; the entry expires within registry.ttlMs)`);
      }
      this.subscriptions.clear();
      if (this.ownsRoute) await this.route.close(left());
      if (abandoned.length > 0) this.logger.warn({ abandoned, closeTimeoutMs: limitMs }, 'closed without finishing everything');
      this.warnings.flush();
      silence(this.logger);
      silence(this.routeLogger);
      this.emit('close');
    })();
    return this.closing;
  }

  // ---- variables ----

  /** Reads a variable; null when unset. Keyed variables take their key after the variable. */
  async get<V extends VarDefinition>(variable: V, ...key: NoInfer<VarKeyArgs<V>>): Promise<VarValue<V> | null> {
    const { redisKey } = this.resolveVariable('get', variable, key[0]);
    const bytes = await this.route.get(redisKey);
    if (bytes === null) return null;
    // a stored value is read again and again: no replay window, but the signer, the key and the ciphertext are checked
    const plain = variable.confidential ? this.openConfidential(variable, bytes, redisKey) : bytes;
    return decodeVariable(variable, redisKey, plain, this.codec) as VarValue<V>;
  }

  /**
   * Writes a variable (refusing a value of the wrong type with a
   * ValidationError) and tells its watchers. Keyed variables take their key
   * after the variable: `set(RedisVars.ServiceInfo, 'users', info)`.
   */
  async set<V extends VarDefinition>(variable: V, ...args: NoInfer<[...VarKeyArgs<V>, VarValue<V>, SetOptions?]>): Promise<void> {
    this.assertVariable('set', variable);
    const key = variable.keyed ? (args[0] as string) : undefined;
    const value = args[variable.keyed ? 1 : 0];
    const options = (args[variable.keyed ? 2 : 1] ?? {}) as SetOptions;
    const { redisKey } = this.resolveVariable('set', variable, key);
    if (typeof options !== 'object' || options === null) throw new ValidationError(`set options must be an object; received ${describeValue(options)}`);
    refuseUnknownOptions('set', options, SET_OPTION_NAMES);
    if (variable.internal) throw new ValidationError(`variable "${variable.name}" is managed by intracom and cannot be set`);
    const encoded = encodeVariable(variable, value, this.codec);
    const stored = variable.confidential ? this.confidentialSealer('set', variable, true).seal(Buffer.from(encoded), redisKey, true) : encoded;
    const ttlMs = options.ttlMs ?? variable.ttlMs;
    if (ttlMs !== undefined) positiveInteger(`ttlMs of set("${variable.name}")`, ttlMs);
    await this.route.set(redisKey, stored, ttlMs);
    await this.announceChange(variable, key, value, false);
  }

  /** Deletes a variable and tells its watchers; resolves true when it existed. */
  async delete<V extends VarDefinition>(variable: V, ...key: NoInfer<VarKeyArgs<V>>): Promise<boolean> {
    const { redisKey } = this.resolveVariable('delete', variable, key[0]);
    const removed = await this.route.del(redisKey);
    await this.announceChange(variable, key[0], null, true);
    return removed > 0;
  }

  /**
   * Atomically adds `by` (default 1) to an integer variable and resolves with
   * the new value; never a lost update, unlike a read-modify-write. Refreshes
   * the variable's TTL when it has one.
   */
  async increment<V extends VarDefinition<'integer'>>(variable: V, ...args: NoInfer<[...VarKeyArgs<V>, by?: number]>): Promise<number> {
    this.assertVariable('increment', variable);
    const key = variable.keyed ? (args[0] as string) : undefined;
    const by = (args[variable.keyed ? 1 : 0] ?? 1) as number;
    const { redisKey } = this.resolveVariable('increment', variable, key);
    if (variable.type !== 'integer') throw new ValidationError(`increment needs an integer variable; "${variable.name}" is ${variable.type}`);
    if (variable.confidential) throw new ValidationError(`increment of "${variable.name}" is refused: the variable is confidential, and Redis cannot add to its ciphertext (get, then set)`);
    if (!Number.isSafeInteger(by)) throw new ValidationError(`increment of "${variable.name}" needs a safe integer step; received ${describeValue(by)}`);
    let value: number;
    try {
      value = await this.route.incrBy(redisKey, by, variable.ttlMs);
    } catch (error) {
      // the route names the key: say it of the variable (and keep a secret's value out)
      const reached = reachedOf(error);
      if (reached === undefined) throw error;
      const subject = `"${variable.name}"${key === undefined ? '' : ` key ${JSON.stringify(key)}`}`;
      throw variable.secret
        ? new ValidationError(`increment of ${subject} would take it outside the safe integers ±${Number.MAX_SAFE_INTEGER}: refused, nothing changed (value of a secret variable not shown)`)
        : incrementOutOfRange(subject, by, reached);
    }
    // every value the route resolves is a safe integer, so every watcher takes this change
    await this.announceChange(variable, key, value, false);
    return value;
  }

  /**
   * Calls `handler` whenever any instance sets, increments or deletes the
   * variable through intracom. For a keyed variable, `key` narrows to one
   * key; without it every key is watched. Resolves once the watch is active.
   */
  async watch<V extends VarDefinition>(variable: V, handler: (change: VariableChange<VarValue<V>>) => void | Promise<void>, key?: string): Promise<Unsubscribe> {
    this.assertVariable('watch', variable);
    this.resolveVariable('watch', variable, variable.keyed ? (key ?? '*') : undefined);
    if (typeof handler !== 'function') throw handlerError(`watch of "${variable.name}"`, handler);
    const channel = this.names.variableChanged(variable.owner, variable.name);
    return this.listen(channel, undefined, (payload, event) => {
      const change = payload as VariableChangeWire;
      const reason = variableChangeProblem(variable, change);
      const value = reason === undefined && !change.deleted && !valueless(variable) ? receivedVariableValue(variable, change.value) : null;
      if (reason !== undefined) {
        this.invalidEvents += 1;
        this.invalidReports.add(channel, reason);
        return;
      }
      if (key !== undefined && change.key !== key) return;
      return handler({
        key: change.key ?? undefined,
        value: value as VarValue<V> | null,
        secret: valueless(variable),
        deleted: change.deleted,
        changedBy: event.headers.serviceName,
        sender: event.sender,
      });
    });
  }

  // ---- events ----

  /**
   * Publishes an event `{ headers: { name, createdAt, serviceName }, payload }`
   * on `topic` and resolves with the number of subscribers that received it
   * (pub/sub is at-most-once: 0 means nobody was listening). Events published
   * within one tick leave as one frame per topic, in order. A payload that
   * MessagePack cannot carry (a function or a symbol anywhere, a value that
   * refers to itself) is refused with ValidationError naming where in it.
   */
  publish<P>(topic: string, payload: P): Promise<number> {
    let target: { channel: string; headers: EventHeaders };
    try {
      target = this.eventTarget(topic, payload);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.route.publish(target.channel, payload, target.headers);
  }

  /**
   * Publishes an event exactly like {@link RedisClient.publish} (same frame,
   * same order, at-most-once) but returns nothing: no promise per event,
   * which at tens of thousands of events a second is most of the
   * publisher's cost (its garbage collection). The receiver count is not
   * reported. An event that cannot be sent (too large, not encodable, the
   * write failed) is counted in `stats().unsentEvents`, logged, and emitted
   * as the client's `error` event when that is listened to. Throws
   * NotConnectedError when the client is not connected, and ValidationError
   * for a bad topic or a payload that `publish` refuses, before anything is
   * queued.
   *
   * @example
   * ```ts
   * for (const reading of readings) client.publishAndForget('sensors.readings', reading);
   * ```
   */
  publishAndForget<P>(topic: string, payload: P): void {
    const target = this.eventTarget(topic, payload);
    this.route.post(target.channel, payload, target.headers, topic, this.forgotten);
  }

  /**
   * Calls `handler` for every event on exactly `topic` (glob characters are
   * literal here). At most `maxInFlight` calls run at once; events past it
   * are shed and counted. A `handler` that is not a function is refused with
   * ValidationError. The subscriptions of one tick reach Redis as one
   * SUBSCRIBE per 1,024 channels; a channel the ACL refuses rejects with
   * PermissionError alone, the others of its tick still subscribe. What a
   * subscription costs in heap and CPU is in docs/benchmarks.md
   * (`subscribe-10k`); for thousands of topics with one handler,
   * {@link subscribeMany} costs less of both.
   */
  subscribe<P = unknown>(topic: string, handler: EventHandler<P>, options?: SubscribeOptions): Promise<Unsubscribe> {
    const problem = topicProblem(topic, 'topic', describeValue);
    if (problem !== undefined) return Promise.reject(new ValidationError(problem));
    if (typeof handler !== 'function') return Promise.reject(handlerError(`subscribe to "${topic}"`, handler));
    return this.listen(this.names.channel(topic), undefined, handler as EventHandler, options);
  }

  /**
   * Calls `handler` for every event on any of `topics` (each exact, as in
   * `subscribe`), with one promise and one unsubscribe for all of them:
   * the way to subscribe thousands of topics, at about the cost of one
   * SUBSCRIBE of as many channels and a fraction of the memory of as many
   * `subscribe` calls (docs/benchmarks.md, `subscribe-10k`). The topic of
   * each event is `event.topic`. It is one subscription: `maxInFlight`
   * bounds the handlers of all its topics together. A topic listed twice
   * counts once; an empty list subscribes nothing. All or nothing: when
   * Redis refuses one topic (PermissionError naming its channel) or a
   * subscription fails, the topics that did subscribe are unsubscribed
   * again and the promise rejects with that error. ValidationError for a
   * `topics` that is not an array of non-empty strings (naming the first bad
   * one) or a `handler` that is not a function, before anything is
   * subscribed.
   *
   * @example
   * ```ts
   * const stop = await client.subscribeMany(devices.map((id) => `device.${id}.events`), (payload, event) => {
   *   console.log(event.topic, payload);
   * });
   * await stop(); // every topic of the call
   * ```
   */
  subscribeMany<P = unknown>(topics: readonly string[], handler: EventHandler<P>, options?: SubscribeOptions): Promise<Unsubscribe> {
    if (!Array.isArray(topics)) return Promise.reject(new ValidationError(`topics must be an array of non-empty strings; received ${describeValue(topics)}`));
    const channels = new Array<string>(topics.length);
    for (let i = 0; i < topics.length; i++) {
      const topic: unknown = topics[i];
      const problem = topicProblem(topic, `topics[${i}]`, describeValue);
      if (problem !== undefined) return Promise.reject(new ValidationError(problem));
      channels[i] = this.names.channel(topic as string);
    }
    if (typeof handler !== 'function') return Promise.reject(handlerError(`subscribeMany of ${topics.length} topics`, handler));
    return this.listen(channels, undefined, handler as EventHandler, options);
  }

  /** Calls `handler` for every event on a topic matching the glob `pattern` (`audit.*`), bounded like `subscribe`. */
  psubscribe<P = unknown>(pattern: string, handler: EventHandler<P>, options?: SubscribeOptions): Promise<Unsubscribe> {
    const problem = patternProblem(pattern);
    if (problem !== undefined) return Promise.reject(new ValidationError(problem));
    if (typeof handler !== 'function') return Promise.reject(handlerError(`psubscribe to "${pattern}"`, handler));
    return this.listen(undefined, this.names.channel(pattern), handler as EventHandler, options);
  }

  // ---- registry ----

  /** The live instances of `service` (default: this one's service). */
  async instances(service: string = this.service): Promise<InstanceInfo[]> {
    checkName('service', service);
    const announcements = await this.route.liveInstances(service);
    const live: InstanceInfo[] = [];
    for (const bytes of announcements) {
      try {
        const info = this.codec.decode(bytes) as InstanceInfo;
        // a foreign instance may write its numbers as 64-bit integers (bigints once decoded)
        for (const field of ['pid', 'startedAt'] as const) if (typeof info[field] === 'bigint') info[field] = Number(info[field]);
        live.push(info);
      } catch (cause) {
        this.reportMalformed(new MalformedMessageError(this.names.instanceAnnouncements(service), 'announcement does not decode', { cause }));
      }
    }
    return live;
  }

  /** Counters: frames and messages sent and received, malformed frames, invalid events, handler errors. */
  stats(): ClientStats {
    return { ...this.route.stats(), invalidEvents: this.invalidEvents, handlerErrors: this.handlerErrors, shed: this.shed, handlersInFlight: this.handlersInFlight, unsentEvents: this.unsentEvents };
  }

  // ---- internals ----

  /**
   * Not async, and no options object when none is given: subscribing
   * thousands of topics at once costs, per topic, the subscription object
   * and one promise chain step, little more than the route's own work.
   */
  private listen(channel: string | string[] | undefined, pattern: string | undefined, handler: EventHandler, options?: SubscribeOptions): Promise<Unsubscribe> {
    let subscribing: Promise<RouteUnsubscribe>;
    let subscription: EventSubscription;
    try {
      if (this.closing) throw new NotConnectedError('subscribe', 'closed');
      subscription = new EventSubscription(this.eventHost, handler, options === undefined ? this.maxInFlight : this.subscriptionLimit(options));
      if (typeof channel === 'string') subscribing = this.route.subscribe(channel, subscription.receive);
      else if (channel !== undefined) subscribing = this.route.subscribeMany(channel, subscription.receive);
      else subscribing = this.route.psubscribe(pattern as string, subscription.receive);
    } catch (error) {
      return Promise.reject(error);
    }
    return subscribing.then((routeUnsubscribe) => {
      subscription.routeUnsubscribe = routeUnsubscribe;
      this.subscriptions.add(subscription.unsubscribe);
      if (this.logger.isLevelEnabled('debug')) this.logger.debug(typeof channel === 'string' ? { channel } : channel !== undefined ? { channels: channel.length } : { pattern }, 'subscribed');
      return subscription.unsubscribe;
    });
  }

  /** The `maxInFlight` of a subscription's options (checked: ValidationError naming what is wrong). */
  private subscriptionLimit(options: SubscribeOptions): number {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`subscribe options must be an object; received ${describeValue(options)}`);
    refuseUnknownOptions('subscribe', options, SUBSCRIBE_OPTION_NAMES);
    return options.maxInFlight === undefined ? this.maxInFlight : positiveInteger('maxInFlight (subscribe option)', options.maxInFlight);
  }

  /** The checks of publish and publishAndForget (throws NotConnectedError, ValidationError), then {@link topicState}. */
  private eventTarget(topic: string, payload: unknown): { channel: string; headers: EventHeaders } {
    if (this.route.status !== 'ready') throw new NotConnectedError(`publish to "${topic}"`, this.route.status);
    // a topic published before was checked then (every topic of the map is well-formed)
    const known = this.topics.get(topic);
    if (known === undefined) {
      const problem = topicProblem(topic, 'topic', describeValue);
      if (problem !== undefined) throw new ValidationError(problem);
    }
    const unsendable = unencodableReason(payload, 'payload');
    if (unsendable !== undefined) throw new ValidationError(`cannot publish to "${topic}": ${unsendable}`);
    return this.topicState(topic, undefined, known);
  }

  /**
   * The channel of a topic and the headers of an event published now. A burst
   * within one millisecond shares one headers object, which the route uses to
   * send the burst's headers once.
   */
  private topicState(topic: string, channel?: string, known = this.topics.get(topic)): { channel: string; headers: EventHeaders } {
    const now = this.clock.now();
    let state = known;
    if (state === undefined) {
      if (this.topics.size >= 10_000) this.topics.clear();
      state = { channel: channel ?? this.names.channel(topic), ms: -1, headers: { name: topic, createdAt: '', serviceName: this.service } };
      this.topics.set(topic, state);
    }
    if (state.ms !== now) {
      state.ms = now;
      state.headers = { name: topic, createdAt: new Date(now).toISOString(), serviceName: this.service };
    }
    return state;
  }

  /** Throws a ValidationError unless `variable` is a variable definition (checked before any of its fields is read). */
  private assertVariable(operation: string, variable: VarDefinition): void {
    if (typeof variable !== 'object' || variable === null || typeof variable.name !== 'string') {
      throw new ValidationError(`${operation} needs a variable declared with defineVar; received ${describeValue(variable)}`);
    }
    if (!checkedVariables.has(variable)) {
      // a definition built by hand (not by defineVar) must not make an ambiguous key or channel either
      checkName('variable name', variable.name, 'segment');
      if (!variable.internal) checkName(`owner of variable "${variable.name}"`, variable.owner);
      checkedVariables.add(variable);
    }
  }

  private resolveVariable(operation: string, variable: VarDefinition, key: string | undefined): { redisKey: string } {
    this.assertVariable(operation, variable);
    if (variable.keyed) {
      if (typeof key !== 'string' || key.length === 0) throw new ValidationError(`variable "${variable.name}" is keyed by ${variable.keyDescription ?? 'a key'}; ${operation} received ${describeValue(key)}`);
      // UTF-8 cannot carry it: Redis would receive U+FFFD, and two keys would name one value
      if (hasLoneSurrogate(key)) throw new ValidationError(`the key of variable "${variable.name}" must be well-formed Unicode (no lone surrogate: two keys would name one value); ${operation} received ${JSON.stringify(key)}`);
    } else if (key !== undefined) {
      throw new ValidationError(`variable "${variable.name}" is not keyed; ${operation} received the key ${describeValue(key)}`);
    }
    return { redisKey: this.names.variable(variable.owner, variable.name, key) };
  }

  /** The sealer of a confidential variable's value; a ValidationError when this client has no auth (or, to write, cannot encrypt). */
  private confidentialSealer(operation: string, variable: VarDefinition, encrypt: boolean): FrameSealer {
    const sealer = this.route.sealer;
    if (sealer === undefined || (encrypt && !sealer.canEncrypt)) {
      throw new ValidationError(`${operation} of "${variable.name}" needs the auth option, and to write auth.encryption with a signing key: the variable is confidential; received ${sealer === undefined ? 'no auth option' : 'auth without encryption or without a private key'}`);
    }
    return sealer;
  }

  /**
   * The value of a confidential variable, opened: it must be encrypted (a value in clear, unsigned or signed,
   * is a downgrade) and signed by the variable's owner (another trusted service's value is not the owner's).
   */
  private openConfidential(variable: VarDefinition, bytes: Buffer, redisKey: string): Buffer {
    const sealer = this.confidentialSealer('get', variable, false);
    const opened = sealer.open(bytes, redisKey, false, '', true);
    if (opened.sender.service !== variable.owner) throw sealer.refuseClaim(redisKey, `value of confidential "${variable.name}" signed by "${opened.sender.service}", not by its owner "${variable.owner}"`);
    return opened.inner;
  }

  private async announceChange(variable: VarDefinition, key: string | undefined, value: unknown, deleted: boolean): Promise<void> {
    const change: VariableChangeWire = valueless(variable) ? { key: key ?? null, deleted, secret: true } : { key: key ?? null, value, deleted };
    const channel = this.names.variableChanged(variable.owner, variable.name);
    const state = this.topicState(this.names.topicOf(channel), channel);
    await this.route.publish(state.channel, change, state.headers);
  }

  /**
   * Announces this instance at connect, in the one step that checks no other
   * live process holds its id (see the announce script's `exclusive` mode);
   * while one does, tries again every ID_RETRY_MS (or when that one's
   * announcement expires, if sooner), until `instanceIdWaitMs`. Each try
   * waits for Redis until `deadline`, then `connectTimeoutMs` after the
   * previous pause.
   */
  private async takeInstanceId(deadline: number): Promise<void> {
    const started = performance.now();
    for (let tries = 1; ; tries++) {
      this.mayHoldId = true;
      // a Redis that stops answering after the handshake (paused, busy, frozen) must not hold connect() past its limit
      const held = await beforeDeadline(
        this.route.announce(this.service, this.instanceId, this.announcement, this.instanceTtlMs, true),
        deadline,
        `${this.connectTimeoutMs} ms (connectTimeoutMs)`,
        'announcing the instance',
      );
      if (held === undefined) return;
      this.mayHoldId = false;
      const waited = performance.now() - started;
      const holder = this.holderOf(held);
      if (waited >= this.instanceIdWaitMs) throw new InstanceIdInUseError(this.service, this.instanceId, holder, this.instanceIdWaitMs);
      if (tries === 1) {
        this.logger.warn(
          { holder, expiresInMs: held.expiresInMs, instanceIdWaitMs: this.instanceIdWaitMs },
          'another live process holds this instance id; waiting for it to close or expire before starting (registry.instanceIdWaitMs)',
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, Math.min(ID_RETRY_MS, held.expiresInMs + 1, this.instanceIdWaitMs - waited)));
        this.wakeIdWait = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeIdWait = undefined;
      this.instanceIdWaitedMs = performance.now() - started;
      if (this.closing) throw new NotConnectedError('connect', 'closed', `close() was called while it waited for instance id "${this.instanceId}"`);
      deadline = performance.now() + this.connectTimeoutMs;
    }
  }

  /** What the process holding this id announced (host, pid, startedAt), when it decodes. */
  private holderOf(held: HeldInstanceId): { host?: unknown; pid?: unknown; startedAt?: unknown } | undefined {
    try {
      const info = this.codec.decode(held.announcement) as Partial<InstanceInfo> | null;
      if (typeof info !== 'object' || info === null) return undefined;
      const startedAt = typeof info.startedAt === 'bigint' ? Number(info.startedAt) : info.startedAt;
      return { host: info.host, pid: typeof info.pid === 'bigint' ? Number(info.pid) : info.pid, startedAt };
    } catch {
      return undefined;
    }
  }

  private async beat(): Promise<void> {
    const { malformed, authRefused } = this.route.stats();
    const load = this.info.load;
    if (load === undefined || load.shed !== this.shed || load.malformed !== malformed || load.handlersInFlight !== this.handlersInFlight || (load.authRefused ?? 0) !== authRefused) {
      // re-encoded only when a counter moved: an idle instance announces the same bytes
      this.info.load = { shed: this.shed, malformed, handlersInFlight: this.handlersInFlight };
      if (authRefused > 0) this.info.load.authRefused = authRefused;
      this.announcement = this.codec.encode(this.info);
    }
    await this.route.announce(this.service, this.instanceId, this.announcement, this.instanceTtlMs);
  }

  private reportMalformed(error: MalformedMessageError | AuthenticationError): void {
    if (error.code === 'ERR_AUTHENTICATION') this.warnings.warn(`unauthenticated ${error.source}`, { err: error }, 'unauthenticated frame refused');
    else this.warnings.warn(`malformed ${error.source}`, { err: error }, 'malformed message skipped');
    if (this.listenerCount('malformed') > 0) this.emit('malformed', error);
  }

  private reportHandlerError(error: unknown, channel: string): void {
    this.handlerErrors += 1;
    this.warnings.error(`handler ${channel}`, { err: error, channel }, 'an event handler failed');
  }

  private reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

/**
 * Why a received change event is not one of `variable`'s, or undefined when it
 * is: the shape, the key (a keyed variable's changes name a key, another's do
 * not) and the value's type. A watcher is given only values its variable can
 * hold, whoever published on its channel.
 */
/** True when a variable's change events carry no value: a secret's, and a confidential one's (its value must not travel in clear). */
function valueless(variable: VarDefinition): boolean {
  return variable.secret === true || variable.confidential === true;
}

function variableChangeProblem(variable: VarDefinition, change: VariableChangeWire): string | undefined {
  if (typeof change !== 'object' || change === null || typeof change.deleted !== 'boolean') return 'a variable change must be a map with a boolean "deleted"';
  if (variable.keyed ? typeof change.key !== 'string' : change.key !== null && change.key !== undefined) {
    return variable.keyed
      ? `a change of keyed variable "${variable.name}" needs a string key; received ${describeValue(change.key)}`
      : `a change of unkeyed variable "${variable.name}" must carry no key (a null or absent key); received ${describeValue(change.key)}`;
  }
  if (change.deleted || valueless(variable)) return undefined;
  return fitsVariable(variable, receivedVariableValue(variable, change.value)) ? undefined : `a change of variable "${variable.name}" (${variable.type}) carried ${describeVariableValue(variable, change.value)}`;
}

/** The error of a handler that is not a function, refused at the call that registers it (it would otherwise throw on every event). */
function handlerError(registration: string, handler: unknown): ValidationError {
  return new ValidationError(`the handler of ${registration} must be a function; received ${describeValue(handler)}`);
}

function checked<T>(option: string, value: unknown, check: () => T): T extends void ? string : T {
  try {
    const result = check();
    return (result === undefined ? value : result) as T extends void ? string : T;
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ValidationError(`option ${option}: ${reason}`);
  }
}

/**
 * What a failed connect rejects with: a ConnectionError whose `cause` is
 * what the server said (an ACL denial, NOAUTH, a MOVED reply), never the raw
 * ioredis error.
 */
/** How often connect() tries again for an instance id another process holds: a graceful close of that one is seen within this. */
const ID_RETRY_MS = 100;

/** startedAt of the last client this process made (see the constructor). */
let lastStartedAt = 0;

function connectionFailure(error: unknown, route: Route): unknown {
  if (error instanceof ConnectionError || error instanceof NotConnectedError || error instanceof PermissionError || error instanceof InstanceIdInUseError) return error;
  const target = (route as { target?: string }).target ?? `the ${route.kind} route`;
  const message = error instanceof Error ? error.message : String(error);
  const hint = /^MOVED|^ASK|CLUSTERDOWN/.test(message) ? ' (this is a Redis Cluster node: connect with an ioredis Cluster)' : '';
  return new ConnectionError(target, `${message}${hint}`, { cause: error });
}

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(`${option} must be a positive integer; received ${describeValue(value)}`);
  }
  return value;
}
