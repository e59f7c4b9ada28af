import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { assertName } from '../../vars/define';
import { Names } from '../../vars/names';
import type { VarDefinition, VarKeyArgs, VarValue } from '../../vars/types';
import { MsgpackCodec, type Codec } from '../envelope/codec';
import type { EventBatch, EventHeaders, EventMessage } from '../envelope/types';
import { invalidEventReason } from '../envelope/validate';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { ValidationError } from '../errors/ValidationError';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { MemoryBus } from '../route/MemoryBus';
import { MemoryRoute } from '../route/MemoryRoute';
import { RedisRoute } from '../route/RedisRoute';
import type { Route, RouteStats, RouteStatus } from '../route/Route';
import { VERSION } from '../version';
import { DEFAULT_CLIENT_OPTIONS, type RedisClientOptions } from './RedisClientOptions';
import { decodeVariable, encodeVariable } from './variableCodec';
import { describeValue } from '../../vars/describe';
import { newUuid } from '../envelope/ids';
import { defaultLogger } from '../log/logger';

/** What an event handler receives beside the payload. */
export interface ReceivedEvent<P = unknown> extends EventMessage<P> {
  /** The topic (channel without namespace). */
  topic: string;
  /** The pattern that matched, for `psubscribe`. */
  pattern?: string;
}

/** Handles one event; may be async (a rejection is logged, never thrown into delivery). */
export type EventHandler<P = unknown> = (payload: P, event: ReceivedEvent<P>) => void | Promise<void>;

/** Stops a subscription (the Redis subscription goes with its last handler). */
export type Unsubscribe = () => Promise<void>;

/** One live instance of a service, as it announced itself. */
export interface InstanceInfo {
  service: string;
  instanceId: string;
  host: string;
  pid: number;
  /** Start time, ms since the epoch. */
  startedAt: number;
  /** intracom version it runs. */
  version: string;
}

/** A change of a watched variable. */
export interface VariableChange<T = unknown> {
  /** The parameter of a keyed variable. */
  key?: string;
  /** The new value; null when deleted. */
  value: T | null;
  /** True when the variable was deleted. */
  deleted: boolean;
  /** The service that changed it. */
  changedBy: string;
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
}

interface VariableChangeWire {
  key: string | null;
  value: unknown;
  deleted: boolean;
}

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
  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;
  private readonly heartbeatMs: number;
  private readonly instanceTtlMs: number;
  private readonly ownsRoute: boolean;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly announcement: Buffer;
  private readonly subscriptions = new Set<Unsubscribe>();
  private closing: Promise<void> | undefined;
  private connecting: Promise<void> | undefined;
  private invalidEvents = 0;
  private handlerErrors = 0;
  /** Per topic: its channel name and the headers shared by the events of the current millisecond. */
  private readonly topics = new Map<string, { channel: string; ms: number; headers: EventHeaders }>();

  constructor(options: RedisClientOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describeValue(options)}`);
    this.service = checked('service', options.service, () => assertName('service', options.service));
    this.instanceId = options.instanceId === undefined ? newUuid() : checked('instanceId', options.instanceId, () => assertName('instanceId', options.instanceId));
    const namespace = options.namespace ?? DEFAULT_CLIENT_OPTIONS.namespace;
    this.names = checked('namespace', namespace, () => new Names(namespace));
    const limits = { ...DEFAULT_CLIENT_OPTIONS.limits, ...options.limits };
    positiveInteger('limits.maxPayloadBytes', limits.maxPayloadBytes);
    positiveInteger('limits.maxFrameBytes', limits.maxFrameBytes);
    this.limits = Object.freeze(limits);
    const registry = { ...DEFAULT_CLIENT_OPTIONS.registry, ...options.registry };
    this.heartbeatMs = positiveInteger('registry.heartbeatMs', registry.heartbeatMs);
    this.instanceTtlMs = positiveInteger('registry.ttlMs', registry.ttlMs);
    if (this.instanceTtlMs <= this.heartbeatMs) {
      throw new ValidationError(`registry.ttlMs must exceed registry.heartbeatMs (${this.heartbeatMs}); received ${this.instanceTtlMs}`);
    }
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

    const routeOptions = { codec: this.codec, limits, logger: this.moduleLogger('route'), names: this.names };
    const routeChoice = options.route ?? (options.redis !== undefined ? 'redis' : 'memory');
    if (routeChoice === 'redis') {
      if (options.redis === undefined) throw new ValidationError('route "redis" needs the redis option (a URL, ioredis options or an ioredis instance); received undefined');
      if (typeof options.redis !== 'string' && (typeof options.redis !== 'object' || options.redis === null)) {
        throw new ValidationError(`redis must be a URL, ioredis options or an ioredis instance; received ${describeValue(options.redis)}`);
      }
      this.route = new RedisRoute(options.redis, routeOptions);
      this.ownsRoute = true;
    } else if (routeChoice === 'memory') {
      this.route = new MemoryRoute(routeOptions, options.memoryBus ?? MemoryBus.shared, { snapshotFile: options.memorySnapshotFile });
      this.ownsRoute = true;
    } else if (typeof routeChoice === 'object' && routeChoice !== null && typeof routeChoice.publish === 'function') {
      this.route = routeChoice;
      this.ownsRoute = false;
    } else {
      throw new ValidationError(`route must be "redis", "memory" or a Route; received ${describeValue(routeChoice)}`);
    }
    this.route.on('ready', () => this.emit('ready'));
    this.route.on('reconnecting', (info) => this.emit('reconnecting', info));
    this.route.on('error', (error: Error) => this.reportError(error));
    this.route.on('malformed', (error: MalformedMessageError) => this.reportMalformed(error));

    const info: InstanceInfo = { service: this.service, instanceId: this.instanceId, host: hostname(), pid: process.pid, startedAt: Date.now(), version: VERSION };
    this.announcement = this.codec.encode(info);
  }

  /** @internal A logger for one module of this instance (`rpc`, `queues`, `mutex`): service and instance bound once, one `module` key. */
  moduleLogger(module: string): Logger {
    return this.instanceLogger.child({ module });
  }

  /** `idle`, `connecting`, `ready`, `reconnecting`, `closing` or `closed`. */
  get status(): RouteStatus {
    return this.route.status;
  }

  /** Connects the route, announces this instance and starts its heartbeat. Resolves when ready. */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new NotConnectedError('connect', 'closed'));
    this.connecting ??= (async () => {
      try {
        await this.route.connect();
      } catch (error) {
        this.connecting = undefined; // a failed connect can be retried
        throw error;
      }
      await this.beat();
      this.logger.debug({ route: this.route.kind, heartbeatMs: this.heartbeatMs }, 'connected; instance announced in the registry');
      this.heartbeat = setInterval(() => {
        this.beat().catch((error: unknown) => this.warnings.warn('heartbeat', { err: error }, 'heartbeat failed; will retry'));
      }, this.heartbeatMs);
      this.heartbeat.unref();
    })();
    return this.connecting;
  }

  /**
   * Leaves the registry at once, drops every subscription, sends what is
   * queued and closes the connections (those it created).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.heartbeat) clearInterval(this.heartbeat);
      await this.connecting?.catch(() => undefined);
      if (this.route.status === 'ready') {
        await this.route.withdraw(this.service, this.instanceId).catch((error: unknown) => this.logger.warn({ err: error }, 'could not leave the registry'));
      }
      await Promise.allSettled([...this.subscriptions].map((unsubscribe) => unsubscribe()));
      this.subscriptions.clear();
      if (this.ownsRoute) await this.route.close();
      this.warnings.flush();
      this.emit('close');
    })();
    return this.closing;
  }

  // ---- variables ----

  /** Reads a variable; null when unset. Keyed variables take their key after the variable. */
  async get<V extends VarDefinition>(variable: V, ...key: NoInfer<VarKeyArgs<V>>): Promise<VarValue<V> | null> {
    const { redisKey } = this.resolveVariable('get', variable, key[0]);
    const bytes = await this.route.get(redisKey);
    return bytes === null ? null : (decodeVariable(variable, redisKey, bytes, this.codec) as VarValue<V>);
  }

  /**
   * Writes a variable (refusing a value of the wrong type with a
   * ValidationError) and tells its watchers. Keyed variables take their key
   * after the variable: `set(RedisVars.ServiceInfo, 'users', info)`.
   */
  async set<V extends VarDefinition>(variable: V, ...args: NoInfer<[...VarKeyArgs<V>, VarValue<V>, SetOptions?]>): Promise<void> {
    const key = variable.keyed ? (args[0] as string) : undefined;
    const value = args[variable.keyed ? 1 : 0];
    const options = (args[variable.keyed ? 2 : 1] ?? {}) as SetOptions;
    const { redisKey } = this.resolveVariable('set', variable, key);
    if (variable.internal) throw new ValidationError(`variable "${variable.name}" is managed by intracom and cannot be set`);
    const stored = encodeVariable(variable, value, this.codec);
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
    const key = variable.keyed ? (args[0] as string) : undefined;
    const by = (args[variable.keyed ? 1 : 0] ?? 1) as number;
    const { redisKey } = this.resolveVariable('increment', variable, key);
    if (variable.type !== 'integer') throw new ValidationError(`increment needs an integer variable; "${variable.name}" is ${variable.type}`);
    if (!Number.isSafeInteger(by)) throw new ValidationError(`increment of "${variable.name}" needs a safe integer step; received ${describeValue(by)}`);
    const value = await this.route.incrBy(redisKey, by, variable.ttlMs);
    await this.announceChange(variable, key, value, false);
    return value;
  }

  /**
   * Calls `handler` whenever any instance sets, increments or deletes the
   * variable through intracom. For a keyed variable, `key` narrows to one
   * key; without it every key is watched. Resolves once the watch is active.
   */
  async watch<V extends VarDefinition>(variable: V, handler: (change: VariableChange<VarValue<V>>) => void | Promise<void>, key?: string): Promise<Unsubscribe> {
    this.resolveVariable('watch', variable, variable.keyed ? (key ?? '*') : undefined);
    return this.listen(this.names.variableChanged(variable.owner, variable.name), undefined, (payload, event) => {
      const change = payload as VariableChangeWire;
      if (typeof change !== 'object' || change === null || typeof change.deleted !== 'boolean') {
        this.invalidEvents += 1;
        return;
      }
      if (key !== undefined && change.key !== key) return;
      return handler({
        key: change.key ?? undefined,
        value: change.deleted ? null : (change.value as VarValue<V>),
        deleted: change.deleted,
        changedBy: event.headers.serviceName,
      });
    });
  }

  // ---- events ----

  /**
   * Publishes an event `{ headers: { name, createdAt, serviceName }, payload }`
   * on `topic` and resolves with the number of subscribers that received it
   * (pub/sub is at-most-once: 0 means nobody was listening). Events published
   * within one tick leave as one frame per topic, in order.
   */
  publish<P>(topic: string, payload: P): Promise<number> {
    if (this.route.status !== 'ready') return Promise.reject(new NotConnectedError(`publish to "${topic}"`, this.route.status));
    if (typeof topic !== 'string' || topic.length === 0) return Promise.reject(new ValidationError(`topic must be a non-empty string; received ${describeValue(topic)}`));
    const cached = this.topicState(topic);
    return this.route.publish(cached.channel, payload, cached.headers);
  }

  /** Calls `handler` for every event on exactly `topic` (glob characters are literal here). */
  subscribe<P = unknown>(topic: string, handler: EventHandler<P>): Promise<Unsubscribe> {
    if (typeof topic !== 'string' || topic.length === 0) return Promise.reject(new ValidationError(`topic must be a non-empty string; received ${describeValue(topic)}`));
    return this.listen(this.names.channel(topic), undefined, handler as EventHandler);
  }

  /** Calls `handler` for every event on a topic matching the glob `pattern` (`audit.*`). */
  psubscribe<P = unknown>(pattern: string, handler: EventHandler<P>): Promise<Unsubscribe> {
    if (typeof pattern !== 'string' || pattern.length === 0) return Promise.reject(new ValidationError(`pattern must be a non-empty string; received ${describeValue(pattern)}`));
    return this.listen(undefined, this.names.channel(pattern), handler as EventHandler);
  }

  // ---- registry ----

  /** The live instances of `service` (default: this one's service). */
  async instances(service: string = this.service): Promise<InstanceInfo[]> {
    assertName('service', service);
    const announcements = await this.route.liveInstances(service);
    const live: InstanceInfo[] = [];
    for (const bytes of announcements) {
      try {
        live.push(this.codec.decode(bytes) as InstanceInfo);
      } catch (cause) {
        this.reportMalformed(new MalformedMessageError(this.names.instanceAnnouncements(service), 'announcement does not decode', { cause }));
      }
    }
    return live;
  }

  /** Counters: frames and messages sent and received, malformed frames, invalid events, handler errors. */
  stats(): ClientStats {
    return { ...this.route.stats(), invalidEvents: this.invalidEvents, handlerErrors: this.handlerErrors };
  }

  // ---- internals ----

  private async listen(channel: string | undefined, pattern: string | undefined, handler: EventHandler): Promise<Unsubscribe> {
    if (this.closing) throw new NotConnectedError('subscribe', 'closed');
    const deliver = (event: ReceivedEvent, received: string): void => {
      try {
        const outcome = handler(event.payload, event);
        if (outcome && typeof (outcome as Promise<void>).then === 'function') (outcome as Promise<void>).catch((error: unknown) => this.reportHandlerError(error, received));
      } catch (error) {
        this.reportHandlerError(error, received);
      }
    };
    const onMessage = (message: unknown, received: string, matched?: string): void => {
      const reason = invalidEventReason(message);
      if (reason !== undefined) {
        this.invalidEvents += 1;
        this.reportMalformed(new MalformedMessageError(received, reason));
        return;
      }
      const topic = this.names.topicOf(received);
      const pattern = matched === undefined ? undefined : this.names.topicOf(matched);
      const { headers, payloads } = message as EventBatch;
      if (payloads === undefined) return deliver({ headers, payload: (message as EventMessage).payload, topic, pattern }, received);
      for (const payload of payloads) deliver({ headers, payload, topic, pattern }, received);
    };
    const unsubscribeRoute = channel !== undefined ? await this.route.subscribe(channel, onMessage) : await this.route.psubscribe(pattern as string, onMessage);
    const unsubscribe: Unsubscribe = async () => {
      this.subscriptions.delete(unsubscribe);
      await unsubscribeRoute();
    };
    this.subscriptions.add(unsubscribe);
    this.logger.debug(channel !== undefined ? { channel } : { pattern }, 'subscribed');
    return unsubscribe;
  }

  /**
   * The channel of a topic and the headers of an event published now. A burst
   * within one millisecond shares one headers object, which the route uses to
   * send the burst's headers once.
   */
  private topicState(topic: string): { channel: string; headers: EventHeaders } {
    const now = Date.now();
    let state = this.topics.get(topic);
    if (state === undefined) {
      if (this.topics.size >= 10_000) this.topics.clear();
      state = { channel: this.names.channel(topic), ms: -1, headers: { name: topic, createdAt: '', serviceName: this.service } };
      this.topics.set(topic, state);
    }
    if (state.ms !== now) {
      state.ms = now;
      state.headers = { name: topic, createdAt: new Date(now).toISOString(), serviceName: this.service };
    }
    return state;
  }

  private resolveVariable(operation: string, variable: VarDefinition, key: string | undefined): { redisKey: string } {
    if (typeof variable !== 'object' || variable === null || typeof variable.name !== 'string') {
      throw new ValidationError(`${operation} needs a variable declared with defineVar; received ${describeValue(variable)}`);
    }
    if (variable.keyed) {
      if (typeof key !== 'string' || key.length === 0) throw new ValidationError(`variable "${variable.name}" is keyed by ${variable.keyDescription ?? 'a key'}; ${operation} received ${describeValue(key)}`);
    } else if (key !== undefined) {
      throw new ValidationError(`variable "${variable.name}" is not keyed; ${operation} received the key ${describeValue(key)}`);
    }
    return { redisKey: this.names.variable(variable.owner, variable.name, key) };
  }

  private async announceChange(variable: VarDefinition, key: string | undefined, value: unknown, deleted: boolean): Promise<void> {
    const change: VariableChangeWire = { key: key ?? null, value, deleted };
    const state = this.topicState(this.names.topicOf(this.names.variableChanged(variable.owner, variable.name)));
    await this.route.publish(state.channel, change, state.headers);
  }

  private async beat(): Promise<void> {
    await this.route.announce(this.service, this.instanceId, this.announcement, this.instanceTtlMs);
  }

  private reportMalformed(error: MalformedMessageError): void {
    this.warnings.warn(`malformed ${error.source}`, { err: error }, 'malformed message skipped');
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

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(`${option} must be a positive integer; received ${describeValue(value)}`);
  }
  return value;
}
