import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { assertName } from '../../vars/define';
import type { FunctionArgs, FunctionCatalogue, FunctionDefinition, FunctionName, FunctionResult, HandlerArgs, HandlerResult, RpcScope } from '../../vars/functions';
import { assertFunctionDefinition } from '../../vars/functions';
import { moduleRpc, serviceRpc } from '../../vars/names';
import { RedisClient } from '../client/RedisClient';
import { CLIENT_OPTION_NAMES, DEFAULT_CLIENT_OPTIONS, type RedisClientOptions } from '../client/RedisClientOptions';
import { QueryRoute, QueryType, type Query } from '../envelope/types';
import { ConnectionError } from '../errors/ConnectionError';
import { IntracomError } from '../errors/IntracomError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { ValidationError } from '../errors/ValidationError';
import { beforeDeadline, withinMs } from '../route/withinMs';
import { silence } from '../log/logger';
import { createQuery } from '../envelope/query';
import { hostLocally, localHost, stopHostingLocally } from './localServices';
import { QueryHandlers, type QueryContext, type QueryHandler } from '../queues/QueryHandlers';
import { durableTimeoutMs, QueryQueues, type DurableSendOptions, type QueueInspection, type QueryQueueStats } from '../queues/QueryQueues';
import { QueryRequests, type LocalService, type QueryHandle, type QueryRequestOptions } from '../queues/QueryRequests';
import type { DeadLetter } from '../queues/QueueConsumer';
import type { CallContext } from './CallContext';
import { InstanceDirectory, type RpcTarget } from './InstanceDirectory';
import { DEFAULT_RPC_OPTIONS, RPC_OPTION_NAMES, type CallOptions, type RedisRPCClientOptions, type SharedRpcOptions, type StandaloneRpcOptions } from './RedisRPCClientOptions';
import { assertAbortSignal, nestedOptions, refuseUnknownOptions, type OptionNames } from '../../vars/options';
import { DEFAULT_QUERY_QUEUE_OPTIONS } from '../queues/QueryQueueOptions';
import { RpcCaller, type QueryRequestBody, type RpcCallerStats } from './RpcCaller';
import type { RpcCalls } from './RpcCalls';
import { RpcServer, type RpcHandler, type RpcServerStats, type TargetDescription } from './RpcServer';
import { describeValue } from '../../vars/describe';
import { timerMs } from '../client/timerMs';
import { QUERY_FUNCTION } from './wire';

/** Options of `expose`. */
export interface ExposeOptions {
  /**
   * Serve the function on module `module` (`module.<name>.rpc`) instead of
   * this instance's service (`service.<key>.rpc`).
   */
  module?: string;
  /** A declaration to check the arguments and the result against, and to report in `describe`. */
  definition?: FunctionDefinition;
}

/** The handlers of every function of a declaration, typed by it. */
export type Implementation<D extends FunctionCatalogue> = {
  [K in FunctionName<D>]: (args: HandlerArgs<D, K>, context: CallContext) => HandlerResult<D, K> | Promise<HandlerResult<D, K>>;
};

/** Counters of a {@link RedisRPCClient}. */
export interface RpcStats extends RpcCallerStats, RpcServerStats {
  /** Calls of this client waiting for an answer. */
  inFlight: number;
  /** Requests this instance is handling or has queued. */
  serving: number;
}

const RESERVED = /^\$/;

/**
 * Calls between services, each handled by exactly one live instance, that
 * never answer `null` for "something went wrong": a timeout, an unknown
 * function, no instance, a remote exception, a lost connection and a cancel
 * are each their own error class.
 *
 * A request goes to one instance chosen from the RPC registry (see the
 * `spread` option), on that instance's own channel (`service.<key>.rpc.<instanceId>`); the
 * reply comes back on this instance's reply channel, matched by request id.
 * Requests and replies leaving in one tick share one frame per channel.
 *
 * @example
 * const rpc = new RedisRPCClient({ service: 'calc', redis: 'redis://127.0.0.1:6379' });
 * await rpc.expose('add', ([a, b]: [number, number]) => a + b);
 * await rpc.connect();
 * const sum = await rpc.callService<number>('calc', 'add', 1, 2);
 * await rpc.close();
 */
export class RedisRPCClient implements RpcCalls {
  /** The RedisClient underneath (created from the options, or the one given). */
  readonly client: RedisClient;
  /** Service key of this instance. */
  readonly service: string;
  /** Id of this instance. */
  readonly instanceId: string;
  /** The default timeout of a call, in ms. */
  readonly timeoutMs: number;
  private readonly logger: Logger;
  /** Every module logger this client made, silenced once close() has returned. */
  private readonly loggers: Logger[] = [];
  private readonly ownsClient: boolean;
  private readonly directory: InstanceDirectory;
  private readonly caller: RpcCaller;
  private readonly server: RpcServer;
  private readonly closeTimeoutMs: number;
  private readonly serviceTargets = new Map<string, RpcTarget>();
  private readonly moduleTargets = new Map<string, RpcTarget>();
  private connecting: Promise<void> | undefined;
  /** The start of the durable consumers: at connect, or at the first handle() after it (queues.consume). */
  private queuesStarting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private readonly queryHandlers = new QueryHandlers();
  private readonly queues: QueryQueues;
  private readonly requests: QueryRequests;
  private readonly localShortcut: boolean;
  private readonly queryGraceMs: number;
  private readonly local: LocalService;
  /** Set by the first handle(): settles once the service's query function is served (see serveQueries). */
  private queriesServed: Promise<void> | undefined;

  constructor(options: RedisRPCClientOptions) {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describeValue(options)}`);
    if (options.client !== undefined) {
      if (!(options.client instanceof RedisClient)) throw new ValidationError(`client must be a RedisClient; received ${describeValue(options.client)}`);
      refuseClientOptionsBeside(options);
      refuseUnknownOptions('RedisRPCClient', options, SHARED_OPTION_NAMES);
      this.client = options.client;
      this.ownsClient = false;
    } else {
      refuseUnknownOptions('RedisRPCClient', options, STANDALONE_OPTION_NAMES);
      this.client = new RedisClient(clientOptionsOf(options));
      this.ownsClient = true;
    }
    nestedOptions('RedisRPCClient', 'queues', options.queues, DEFAULT_QUERY_QUEUE_OPTIONS);
    this.service = this.client.service;
    this.instanceId = this.client.instanceId;
    this.timeoutMs = timerMs('timeoutMs', options.timeoutMs ?? DEFAULT_RPC_OPTIONS.timeoutMs, 1);
    const concurrency = positiveInteger('concurrency', options.concurrency ?? DEFAULT_RPC_OPTIONS.concurrency);
    const maxQueued = nonNegativeInteger('maxQueued', options.maxQueued ?? DEFAULT_RPC_OPTIONS.maxQueued);
    this.closeTimeoutMs = timerMs('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_RPC_OPTIONS.closeTimeoutMs, 0);
    const probeIntervalMs = timerMs('probeIntervalMs', options.probeIntervalMs ?? DEFAULT_RPC_OPTIONS.probeIntervalMs, 1);
    const instanceCacheMs = nonNegativeInteger('instanceCacheMs', options.instanceCacheMs ?? DEFAULT_RPC_OPTIONS.instanceCacheMs);
    const sliceSize = positiveInteger('sliceSize', options.sliceSize ?? DEFAULT_RPC_OPTIONS.sliceSize);
    const spread = options.spread ?? DEFAULT_RPC_OPTIONS.spread;
    const callers = options.callers === undefined ? undefined : [...new Set(options.callers)];
    if (callers !== undefined && (!Array.isArray(options.callers) || callers.length === 0)) throw new ValidationError(`callers must be a non-empty array of service names; received ${describeValue(options.callers)}`);
    for (const caller of callers ?? []) assertName('callers entry', caller);
    if (spread !== 'burst' && spread !== 'call') throw new ValidationError(`spread must be 'burst' or 'call'; received ${describeValue(spread)}`);
    const registry = { ...DEFAULT_CLIENT_OPTIONS.registry, ...(options.client === undefined ? options.registry : undefined) };
    // a standalone client was built with options.logger already; a shared one keeps its own unless one is given here
    const own = options.client !== undefined && options.logger !== undefined ? options.logger.child({ service: this.service, instanceId: this.instanceId }) : undefined;
    const moduleLogger = (module: string): Logger => {
      const logger = own !== undefined ? own.child({ module }) : this.client.moduleLogger(module);
      this.loggers.push(logger);
      return logger;
    };
    this.logger = moduleLogger('rpc');

    const { route, names, codec } = this.client;
    this.directory = new InstanceDirectory(route, names, this.service, codec, instanceCacheMs, this.logger);
    this.caller = new RpcCaller(route, names, this.directory, { service: this.service, instanceId: this.instanceId, probeIntervalMs, sliceSize, spread }, this.logger);
    this.server = new RpcServer(
      route,
      names,
      codec,
      this.service,
      this.instanceId,
      { concurrency, maxQueued, sliceSize, heartbeatMs: registry.heartbeatMs, registryTtlMs: registry.ttlMs, callers },
      this.logger,
    );
    if (options.localShortcut !== undefined && typeof options.localShortcut !== 'boolean') {
      throw new ValidationError(`localShortcut must be a boolean; received ${describeValue(options.localShortcut)}`);
    }
    this.localShortcut = options.localShortcut ?? DEFAULT_RPC_OPTIONS.localShortcut;
    this.queryGraceMs = timerMs('queryGraceMs', options.queryGraceMs ?? DEFAULT_RPC_OPTIONS.queryGraceMs, 0);
    this.queues = new QueryQueues(this.client, this.queryHandlers, options.queues ?? {}, moduleLogger('queues'));
    this.local = { handlers: this.queryHandlers };
    this.requests = new QueryRequests(
      this.service,
      this.queryHandlers,
      (destination, envelope, timeoutMs, signal) =>
        this.invoke('service', destination, String(envelope.action), [], { timeoutMs, signal }, { type: envelope.type === QueryType.SYNC ? 'SYNC' : 'ASYNC', action: envelope.action, query: envelope.query }),
      this.timeoutMs,
      (destination) => this.localTarget(destination),
    );
  }

  /**
   * Connects the client (when not connected yet), subscribes the reply
   * channel and the channels of every exposed target, and announces them.
   * Resolves when calls can be made and received.
   */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new ValidationError('connect() after close(): create a new RedisRPCClient'));
    if (this.connecting !== undefined && (this.queuesStarting !== undefined || this.queriesServed !== undefined)) {
      return Promise.all([this.connecting, this.queuesStarting, this.queriesServed]).then(() => undefined);
    }
    this.connecting ??= (async () => {
      const { connectTimeoutMs } = this.client;
      let deadline = performance.now() + connectTimeoutMs;
      // each step waits for Redis at most until connectTimeoutMs has passed since connect() began, not counting a wait for the instance id (registry.instanceIdWaitMs)
      const step = <T>(work: Promise<T>, what: string): Promise<T> => beforeDeadline(work, deadline, `${connectTimeoutMs} ms (connectTimeoutMs)`, what);
      try {
        await this.client.connect();
        deadline += this.client.instanceIdWaitedMs;
        if (this.closing) throw new NotConnectedError('connect', 'closed', 'close() was called while it connected');
        await step(this.caller.start(), 'subscribing to the reply channel');
        await step(this.server.start(), 'subscribing and announcing what it serves');
        if (this.closing) throw new NotConnectedError('connect', 'closed', 'close() was called while it connected');
        // durable streams and groups only for a program that consumes (see queues.consume)
        if (this.queues.startsAtConnect || this.queryHandlers.actions().length > 0) await step(this.startQueues(), 'creating the durable queues');
      } catch (error) {
        this.connecting = undefined; // a failed connect can be retried
        if (error instanceof IntracomError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        throw new ConnectionError((this.client.route as { target?: string }).target ?? this.client.route.kind, message, { cause: error });
      }
      if (this.localShortcut) hostLocally(this.client.names.namespace, this.service, this.local);
    })();
    return this.connecting;
  }

  /**
   * From the first handle() on, this instance answers SYNC and ASYNC queries
   * to its service: only then does it join the service's RPC registry (an
   * instance that only calls is no RPC target, and creates no key there).
   * Once connected, connect() resolves when it has joined.
   */
  private serveQueries(): void {
    this.queriesServed ??= this.server.expose('service', this.service, serviceRpc(this.service), QUERY_FUNCTION, (args, context) => this.requests.serve(args, context), undefined).catch((error: unknown) => {
      this.queriesServed = undefined;
      this.logger.warn({ err: error }, 'could not start answering SYNC and ASYNC queries; will retry on the next handle()');
    });
  }

  /** Starts the durable consumers once (a failed start can be retried). */
  private startQueues(after: Promise<void> = Promise.resolve()): Promise<void> {
    this.queuesStarting ??= after.then(() => this.queues.start()).catch((error: unknown) => {
      this.queuesStarting = undefined;
      throw error;
    });
    return this.queuesStarting;
  }

  /**
   * Stops taking calls (the instance leaves the RPC registry), rejects this
   * client's pending calls with CancelledError, lets handlers in progress
   * finish within `closeTimeoutMs` (then fires their signals), and closes
   * the RedisClient when this RPC client created it. Pending ASYNC and SYNC
   * queries get `queryGraceMs` first; everything after that, Redis work
   * included, ends within `closeTimeoutMs`: what Redis did not answer by then
   * is abandoned and one warning lists it. Never rejects.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // a connect still waiting for Redis is cut short when the client closes below
      const connected = this.connecting === undefined || (await withinMs(this.connecting, 0));
      stopHostingLocally(this.client.names.namespace, this.service, this.local);
      await this.requests.close(this.queryGraceMs);
      await this.queuesStarting?.catch(() => undefined);
      const deadline = performance.now() + this.closeTimeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
      const abandoned: string[] = [];
      // each step waits for Redis at most until the deadline; what is still waiting then is abandoned
      if (!(await withinMs(this.queues.stop(), left()))) {
        this.queues.abandon();
        abandoned.push('the durable-query consumers (their batch is redelivered after the visibility timeout)');
      }
      if (!(await withinMs(this.caller.close(), left()))) abandoned.push('unsubscribing the reply channel');
      if (!(await withinMs(this.server.close(left()), left()))) abandoned.push('leaving the RPC registry (the entries expire within registry.ttlMs)');
      if (abandoned.length > 0) this.logger.warn({ abandoned, closeTimeoutMs: this.closeTimeoutMs, connected }, 'RPC client closed without finishing everything');
      if (this.ownsClient) await this.client.closeWithin(left(), this.closeTimeoutMs);
      for (const logger of this.loggers) silence(logger);
    })();
    return this.closing;
  }

  // ---- calling ----

  /** Calls `fn` of a declared module (`module.<name>.rpc`) on one live instance serving it, typed by its declaration; see {@link RpcCalls}. */
  call<D extends FunctionCatalogue<any, 'module'>, K extends FunctionName<D>>(module: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
  /** Calls `fn` of module `moduleName` (`module.<moduleName>.rpc`) on one live instance serving it, as OpenTera's `call`. */
  call<R = unknown>(moduleName: string, fn: string, ...args: unknown[]): Promise<R>;
  call(module: string | FunctionCatalogue, fn: string, ...args: unknown[]): Promise<unknown> {
    return this.invoke('module', module, fn, args, undefined);
  }

  /** Calls `fn` of a declared service (`service.<key>.rpc`) on one live instance, typed by its declaration; see {@link RpcCalls}. */
  callService<D extends FunctionCatalogue<any, 'service'>, K extends FunctionName<D>>(service: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
  /** Calls `fn` of service `serviceKey` (`service.<serviceKey>.rpc`) on one live instance, as OpenTera's `call_service`. */
  callService<R = unknown>(serviceKey: string, fn: string, ...args: unknown[]): Promise<R>;
  callService(service: string | FunctionCatalogue, fn: string, ...args: unknown[]): Promise<unknown> {
    return this.invoke('service', service, fn, args, undefined);
  }

  /**
   * The same `call` and `callService` with per-call options (timeout,
   * AbortSignal, idempotent).
   *
   * @example
   * await rpc.with({ timeoutMs: 500, signal: AbortSignal.timeout(200) }).callService('calc', 'add', 1, 2);
   */
  with(options: CallOptions): RpcCalls {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`call options must be an object; received ${describeValue(options)}`);
    refuseUnknownOptions('call', options, CALL_OPTION_NAMES);
    if (options.timeoutMs !== undefined) timerMs('timeoutMs (call option)', options.timeoutMs, 1);
    assertAbortSignal('signal (call option)', options.signal);
    const invoke = this.invoke.bind(this);
    return {
      call: (module: string | FunctionCatalogue, fn: string, ...args: unknown[]) => invoke('module', module, fn, args, options),
      callService: (service: string | FunctionCatalogue, fn: string, ...args: unknown[]) => invoke('service', service, fn, args, options),
    } as RpcCalls;
  }

  /** Asks one instance of a service which functions it exposes (with their declared types, when declared). */
  describeService(serviceKey: string, options?: CallOptions): Promise<TargetDescription> {
    return this.invoke('service', serviceKey, '$describe', [], options) as Promise<TargetDescription>;
  }

  /** Asks one instance serving a module which functions it exposes. */
  describeModule(moduleName: string, options?: CallOptions): Promise<TargetDescription> {
    return this.invoke('module', moduleName, '$describe', [], options) as Promise<TargetDescription>;
  }

  // ---- serving ----

  /**
   * Exposes `fn` on this instance's service (or on `options.module`). The
   * handler gets the argument list and a {@link CallContext}; what it
   * returns (or resolves) is the result, what it throws reaches the caller
   * as RemoteError. Resolves once the instance listens (at once before
   * `connect()`, which then does it).
   *
   * @example
   * await rpc.expose('add', ([a, b]: [number, number], context) => a + b);
   */
  expose<A extends unknown[] = any[]>(fn: string, handler: RpcHandler<A>, options: ExposeOptions = {}): Promise<void> {
    if (typeof fn !== 'string' || fn.length === 0 || RESERVED.test(fn)) return Promise.reject(new ValidationError(`function name must be a non-empty string not starting with "$"; received ${describeValue(fn)}`));
    if (typeof handler !== 'function') return Promise.reject(new ValidationError(`handler of "${fn}" must be a function; received ${describeValue(handler)}`));
    if (this.closing) return Promise.reject(new ValidationError(`cannot expose "${fn}": the RPC client is closing`));
    const refused = optionsProblem('expose', options, EXPOSE_OPTION_NAMES);
    if (refused !== undefined) return Promise.reject(refused);
    let scope: RpcScope = 'service';
    let name = this.service;
    if (options.module !== undefined) {
      scope = 'module';
      name = options.module;
    }
    let topic: string;
    try {
      topic = scope === 'service' ? serviceRpc(name) : moduleRpc(name);
    } catch (error) {
      return Promise.reject(new ValidationError(`option module: ${(error as Error).message}`));
    }
    if (options.definition !== undefined) {
      try {
        assertFunctionDefinition(`function "${fn}"`, options.definition);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.server.expose(scope, name, topic, fn, handler as RpcHandler, options.definition);
  }

  /**
   * Serves every function of a declaration with handlers typed by it; each
   * request's arguments (and each result) are checked against the
   * declaration, and refused arguments reach the caller as ValidationError.
   */
  async implement<D extends FunctionCatalogue>(declaration: D, handlers: Implementation<D>): Promise<void> {
    if (typeof declaration !== 'object' || declaration === null || typeof declaration.topic !== 'string') {
      throw new ValidationError(`implement needs a declaration from defineFunctions; received ${describeValue(declaration)}`);
    }
    if (typeof handlers !== 'object' || handlers === null) throw new ValidationError(`implement of ${declaration.scope} "${declaration.name}" needs an object of handlers; received ${describeValue(handlers)}`);
    const what = `implement of ${declaration.scope} "${declaration.name}"`;
    if (declaration.scope === 'service' && declaration.name !== this.service) {
      throw new ValidationError(`${what}: this client is service "${this.service}"; a service declaration is implemented by that service's instances (declare a module to serve it from any service)`);
    }
    // a handler under a name the declaration lacks (a typo) would never be called
    refuseUnknownOptions(`${what} handler`, handlers, declaration.functions);
    const missing = Object.keys(declaration.functions).filter((fn) => (handlers as Record<string, unknown>)[fn] === undefined);
    if (missing.length > 0) throw new ValidationError(`${what} has no handler for ${missing.map((fn) => `"${fn}"`).join(', ')}`);
    for (const fn of Object.keys(declaration.functions)) {
      const handler = (handlers as Record<string, unknown>)[fn];
      if (typeof handler !== 'function') throw new ValidationError(`${what}: the handler of "${fn}" must be a function; received ${describeValue(handler)}`);
    }
    await Promise.all(
      Object.entries(declaration.functions).map(([fn, definition]) =>
        this.server.expose(declaration.scope, declaration.name, declaration.topic, fn, (handlers as unknown as Record<string, RpcHandler>)[fn], definition),
      ),
    );
  }

  /** Stops serving a function; later calls get NoHandlerError. Returns false when it was not exposed. */
  unexpose(fn: string, options: { module?: string } = {}): boolean {
    return this.server.unexpose(options.module === undefined ? serviceRpc(this.service) : moduleRpc(options.module), fn);
  }

  // ---- the four query types of the envelope (docs/protocol.md) ----

  /**
   * Handles the queries of one action, whatever their type. The handler gets
   * the query's parameters and a {@link QueryContext} (`queryId`,
   * `processAttempts`: what a handler needs to be idempotent). Its result is
   * the result of ASYNC and SYNC queries. A durable query whose handler
   * throws is redelivered, up to `queues.maxAttempts`. The first handle()
   * makes this instance a target of its service's SYNC and ASYNC queries;
   * on a connected client, `await rpc.connect()` resolves once it is.
   *
   * @example
   * rpc.handle('resync', async ({ userId }: { userId: string }, { queryId }) => cache.refresh(userId, queryId));
   */
  handle<Q = unknown, R = unknown>(action: number | string, handler: QueryHandler<Q, R>): this {
    if (typeof action !== 'string' && (typeof action !== 'number' || !Number.isFinite(action))) {
      throw new ValidationError(`action must be a string or a finite number; received ${describeValue(action)}`);
    }
    if (typeof handler !== 'function') throw new ValidationError(`handler of action ${JSON.stringify(action)} must be a function; received ${describeValue(handler)}`);
    this.queryHandlers.set(action, handler as QueryHandler);
    this.serveQueries();
    if (this.connecting !== undefined && this.closing === undefined && this.queuesStarting === undefined) {
      // connected (or connecting) before the first handler: consumption starts now; connect() resolves once it has
      this.startQueues(this.connecting).catch((error: unknown) => this.logger.warn({ err: error }, 'could not start consuming the durable queues; will retry on the next handle() or connect()'));
    }
    return this;
  }

  /** Stops handling an action; returns false when it was not handled. */
  unhandle(action: number | string): boolean {
    return this.queryHandlers.delete(action);
  }

  /**
   * FIRE_AND_FORGET: resolves with the envelope once the query is durably
   * stored; exactly one instance of `destination` processes it, even across
   * restarts and crashes (redelivered after `queues.visibilityTimeoutMs`).
   */
  fireAndForget(destination: string, action: number | string, query?: unknown, options?: DurableSendOptions): Promise<Query> {
    const refused = optionsProblem('fireAndForget', options, DURABLE_OPTION_NAMES);
    if (refused !== undefined) return Promise.reject(refused);
    const local = this.localTarget(destination);
    if (local !== undefined) return this.fireLocally(local, destination, action, query, options);
    return this.queues.send(QueryType.FIRE_AND_FORGET, destination, action, query ?? null, options);
  }

  /**
   * BROADCAST: resolves with the envelope once stored; every live instance of
   * `destination` processes it once, and it is kept until all of them did.
   */
  broadcast(destination: string, action: number | string, query?: unknown, options?: DurableSendOptions): Promise<Query> {
    const refused = optionsProblem('broadcast', options, DURABLE_OPTION_NAMES);
    if (refused !== undefined) return Promise.reject(refused);
    return this.queues.send(QueryType.BROADCAST, destination, action, query ?? null, options);
  }

  /**
   * ASYNC: returns at once a handle that is the envelope itself: `state` goes
   * PENDING, then DONE (with `result`) or ERROR (with the typed error in
   * `handle.error`); `handle.promise` resolves when it settles.
   */
  sendAsync<R = unknown>(destination: string, action: number | string, query?: unknown, options?: QueryRequestOptions): QueryHandle<R> {
    if (this.closing) return this.requests.refused<R>(QueryType.ASYNC, destination, action, closedError(QueryType.ASYNC, destination, action));
    const refused = optionsProblem('sendAsync', options, REQUEST_OPTION_NAMES);
    if (refused !== undefined) throw refused;
    return this.requests.sendAsync<R>(destination, action, query ?? null, options);
  }

  /** SYNC: resolves with the result, or rejects with the typed errors of RPC (TimeoutError, NoHandlerError, RemoteError, ...). */
  sendSync<R = unknown>(destination: string, action: number | string, query?: unknown, options?: QueryRequestOptions): Promise<R> {
    if (this.closing) return Promise.reject(closedError(QueryType.SYNC, destination, action));
    const refused = optionsProblem('sendSync', options, REQUEST_OPTION_NAMES);
    if (refused !== undefined) return Promise.reject(refused);
    return this.requests.sendSync<R>(destination, action, query ?? null, options);
  }

  /**
   * Any query type through one call (the CLI's `send`): resolves with the
   * envelope once stored (FIRE_AND_FORGET, BROADCAST), at once while PENDING
   * (ASYNC), or when done (SYNC, which rejects with a typed error).
   */
  async send(type: QueryType, destination: string, action: number | string, query?: unknown, options: DurableSendOptions & QueryRequestOptions = {}): Promise<Query> {
    const refused = optionsProblem('send', options, SEND_OPTION_NAMES);
    if (refused !== undefined) throw refused;
    // each type takes its own options; the others (a signal for a durable send) mean nothing to it
    const durable = { timeoutMs: options.timeoutMs, queryId: options.queryId };
    const request = { timeoutMs: options.timeoutMs, signal: options.signal };
    switch (type) {
      case QueryType.FIRE_AND_FORGET:
        return this.fireAndForget(destination, action, query, durable);
      case QueryType.BROADCAST:
        return this.broadcast(destination, action, query, durable);
      case QueryType.ASYNC:
        return this.sendAsync(destination, action, query, request);
      case QueryType.SYNC: {
        if (this.closing) throw closedError(QueryType.SYNC, destination, action);
        const handle = this.requests.request(QueryType.SYNC, destination, action, query ?? null, request);
        await handle.wait();
        return handle;
      }
      default:
        throw new ValidationError(`type must be one of ${Object.values(QueryType).join(', ')}; received ${describeValue(type)}`);
    }
  }

  /** Queue depth, pending count, age of the oldest query, per-instance BROADCAST lag and dead letters of a service. */
  queueStatus(service: string): Promise<QueueInspection> {
    return this.queues.inspect(service);
  }

  /** The dead letters of a service, oldest first. */
  deadLetters(service: string, count?: number): Promise<DeadLetter[]> {
    return this.queues.deadLetters(service, count);
  }

  /** Puts dead letters of a service back on their queue (all, or the given ids); resolves with how many. */
  replayDeadLetters(service: string, ids?: string[], onProgress?: (done: number, total: number) => void): Promise<number> {
    return this.queues.replayDeadLetters(service, ids, onProgress);
  }

  /** Counters of this instance's durable-query consumers. */
  queryStats(): QueryQueueStats {
    return this.queues.stats();
  }

  /** Counters of calls made and requests served. */
  stats(): RpcStats {
    return { ...this.caller.stats(), ...this.server.stats(), inFlight: this.caller.inFlight, serving: this.server.load };
  }

  // ---- internals ----

  private localTarget(destination: string): LocalService | undefined {
    return this.localShortcut ? localHost(this.client.names.namespace, destination) : undefined;
  }

  /** A FIRE_AND_FORGET taken by the local shortcut: a direct call after this tick, errors logged. */
  private async fireLocally(local: LocalService, destination: string, action: number | string, query: unknown, options: DurableSendOptions | undefined): Promise<Query> {
    const timeoutMs = durableTimeoutMs(options ?? {});
    const handler = local.handlers.get(action);
    if (handler === undefined) throw new ValidationError(`the local service "${destination}" handles no action ${JSON.stringify(action)}`);
    const envelope = createQuery({
      serviceNameSource: this.service,
      serviceNameDest: destination,
      type: QueryType.FIRE_AND_FORGET,
      action,
      query: query ?? null,
      timeout_ms: timeoutMs,
      route: QueryRoute.LOCAL,
      queryId: options?.queryId,
    });
    const context: QueryContext = {
      queryId: envelope.queryId,
      type: envelope.type,
      action,
      serviceNameSource: this.service,
      sender: { service: this.service, verified: true }, // the local shortcut never leaves this process
      processAttempts: 1,
      envelope,
      signal: new AbortController().signal,
      extend: async () => true, // no claim to keep: nothing else may take this query
    };
    queueMicrotask(() => {
      Promise.resolve()
        .then(() => handler(envelope.query, context))
        .catch((error: unknown) => this.logger.error({ err: error, queryId: envelope.queryId }, 'a local FIRE_AND_FORGET handler failed'));
    });
    return envelope;
  }

  private invoke(scope: RpcScope, target: string | FunctionCatalogue, fn: string, args: unknown[], options: CallOptions | undefined, query?: QueryRequestBody): Promise<unknown> {
    let resolved: RpcTarget;
    let definition: FunctionDefinition | undefined;
    if (typeof target === 'string') {
      const cache = scope === 'service' ? this.serviceTargets : this.moduleTargets;
      const cached = cache.get(target);
      if (cached !== undefined) resolved = cached;
      else {
        try {
          assertName(scope === 'service' ? 'service key' : 'module name', target);
        } catch (error) {
          return Promise.reject(new ValidationError((error as Error).message));
        }
        resolved = this.directory.target(scope, target, scope === 'service' ? serviceRpc(target) : moduleRpc(target));
        cache.set(target, resolved);
      }
    } else if (typeof target === 'object' && target !== null && typeof target.topic === 'string' && target.scope === scope) {
      resolved = this.directory.target(scope, target.name, target.topic);
      definition = target.functions[fn];
      if (definition === undefined) return Promise.reject(new ValidationError(`${scope} "${target.name}" declares no function "${fn}"`));
    } else {
      const expected = scope === 'service' ? 'a service key or a service declaration' : 'a module name or a module declaration';
      return Promise.reject(new ValidationError(`${scope === 'service' ? 'callService' : 'call'} needs ${expected}; received ${describeValue(target)}`));
    }
    if (query === undefined && (typeof fn !== 'string' || fn.length === 0)) return Promise.reject(new ValidationError(`function name must be a non-empty string; received ${describeValue(fn)}`));
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const idempotent = options?.idempotent ?? definition?.idempotent ?? false;
    return this.caller.call(resolved, fn, args, timeoutMs, options?.signal, idempotent, query);
  }
}

/** What an ASYNC or SYNC query meets after close(): NotConnectedError naming the query, nothing sent. */
function closedError(type: QueryType, destination: unknown, action: unknown): NotConnectedError {
  return new NotConnectedError(`send ${type === QueryType.ASYNC ? 'an' : 'a'} ${type} query to ${describeValue(destination)} (action ${describeValue(action)})`, 'closed');
}

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new ValidationError(`${option} must be a positive integer; received ${describeValue(value)}`);
  return value;
}

function nonNegativeInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ValidationError(`${option} must be a non-negative integer; received ${describeValue(value)}`);
  return value;
}

const EXPOSE_OPTION_NAMES: OptionNames<ExposeOptions> = { module: true, definition: true };
const CALL_OPTION_NAMES: OptionNames<CallOptions> = { timeoutMs: true, signal: true, idempotent: true };
const DURABLE_OPTION_NAMES: OptionNames<DurableSendOptions> = { timeoutMs: true, queryId: true };
const REQUEST_OPTION_NAMES: OptionNames<QueryRequestOptions> = { timeoutMs: true, signal: true };
const SEND_OPTION_NAMES: Readonly<Record<string, unknown>> = { ...DURABLE_OPTION_NAMES, ...REQUEST_OPTION_NAMES };

/** The ValidationError of per-call options that are not an object or name an unknown option, or undefined. */
function optionsProblem(call: string, options: unknown, known: Readonly<Record<string, unknown>>): ValidationError | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) return new ValidationError(`${call} options must be an object; received ${describeValue(options)}`);
  try {
    refuseUnknownOptions(call, options, known);
  } catch (error) {
    return error as ValidationError;
  }
  return undefined;
}

const SHARED_OPTION_NAMES: Readonly<Record<string, true | 'internal'>> = { ...RPC_OPTION_NAMES, client: true };
const STANDALONE_OPTION_NAMES: Readonly<Record<string, true | 'internal'>> = { ...CLIENT_OPTION_NAMES, ...RPC_OPTION_NAMES, client: true };

/** The options of the RedisClient a standalone RedisRPCClient creates: its own names (and a MemoryDeployment's bus, keyed by a symbol), not the RPC ones. */
function clientOptionsOf(options: StandaloneRpcOptions): RedisClientOptions {
  const picked: Record<string | symbol, unknown> = {};
  for (const key of Reflect.ownKeys(options)) {
    if (typeof key === 'symbol' || Object.hasOwn(CLIENT_OPTION_NAMES, key)) picked[key] = (options as unknown as Record<string | symbol, unknown>)[key];
  }
  return picked as unknown as RedisClientOptions;
}

/** With `client` given, a connection option here would be ignored: it belongs to that client. */
function refuseClientOptionsBeside(options: SharedRpcOptions): void {
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(CLIENT_OPTION_NAMES, key) && !Object.hasOwn(RPC_OPTION_NAMES, key)) {
      throw new ValidationError(`RedisRPCClient option "${key}" cannot be given with \`client\`: it is an option of that RedisClient, set it where the client is created`);
    }
  }
}
