import type { Logger } from 'pino';
import { assertName } from '../../vars/define';
import type { FunctionArgs, FunctionCatalogue, FunctionDefinition, FunctionName, FunctionResult, RpcScope } from '../../vars/functions';
import { moduleRpc, serviceRpc } from '../../vars/names';
import { RedisClient } from '../client/RedisClient';
import { DEFAULT_CLIENT_OPTIONS } from '../client/RedisClientOptions';
import { ValidationError } from '../errors/ValidationError';
import type { CallContext } from './CallContext';
import { InstanceDirectory, type RpcTarget } from './InstanceDirectory';
import { DEFAULT_RPC_OPTIONS, type CallOptions, type RedisRPCClientOptions } from './RedisRPCClientOptions';
import { RpcCaller, type RpcCallerStats } from './RpcCaller';
import type { RpcCalls } from './RpcCalls';
import { RpcServer, type RpcHandler, type RpcServerStats, type TargetDescription } from './RpcServer';

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
  [K in FunctionName<D>]: (args: FunctionArgs<D, K>, context: CallContext) => FunctionResult<D, K> | Promise<FunctionResult<D, K>>;
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
 * A request goes to one instance chosen round-robin from the RPC registry,
 * on that instance's own channel (`service.<key>.rpc.<instanceId>`); the
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
  private readonly ownsClient: boolean;
  private readonly directory: InstanceDirectory;
  private readonly caller: RpcCaller;
  private readonly server: RpcServer;
  private readonly closeTimeoutMs: number;
  private readonly serviceTargets = new Map<string, RpcTarget>();
  private readonly moduleTargets = new Map<string, RpcTarget>();
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: RedisRPCClientOptions) {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${String(options)}`);
    if (options.client !== undefined) {
      if (!(options.client instanceof RedisClient)) throw new ValidationError(`client must be a RedisClient; received ${describe(options.client)}`);
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.client = new RedisClient(options);
      this.ownsClient = true;
    }
    this.service = this.client.service;
    this.instanceId = this.client.instanceId;
    this.timeoutMs = positiveInteger('timeoutMs', options.timeoutMs ?? DEFAULT_RPC_OPTIONS.timeoutMs);
    const concurrency = positiveInteger('concurrency', options.concurrency ?? DEFAULT_RPC_OPTIONS.concurrency);
    const maxQueued = nonNegativeInteger('maxQueued', options.maxQueued ?? DEFAULT_RPC_OPTIONS.maxQueued);
    this.closeTimeoutMs = nonNegativeInteger('closeTimeoutMs', options.closeTimeoutMs ?? DEFAULT_RPC_OPTIONS.closeTimeoutMs);
    const probeIntervalMs = positiveInteger('probeIntervalMs', options.probeIntervalMs ?? DEFAULT_RPC_OPTIONS.probeIntervalMs);
    const instanceCacheMs = nonNegativeInteger('instanceCacheMs', options.instanceCacheMs ?? DEFAULT_RPC_OPTIONS.instanceCacheMs);
    const registry = { ...DEFAULT_CLIENT_OPTIONS.registry, ...(options.client === undefined ? options.registry : undefined) };
    this.logger = (options.logger ?? this.client.logger).child({ module: 'rpc' });

    const { route, names, codec } = this.client;
    this.directory = new InstanceDirectory(route, names, codec, instanceCacheMs, this.logger);
    this.caller = new RpcCaller(route, names, this.directory, { service: this.service, instanceId: this.instanceId, probeIntervalMs }, this.logger);
    this.server = new RpcServer(
      route,
      names,
      codec,
      this.service,
      this.instanceId,
      { concurrency, maxQueued, heartbeatMs: registry.heartbeatMs, registryTtlMs: registry.ttlMs },
      this.logger,
    );
  }

  /**
   * Connects the client (when not connected yet), subscribes the reply
   * channel and the channels of every exposed target, and announces them.
   * Resolves when calls can be made and received.
   */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new ValidationError('connect() after close(): create a new RedisRPCClient'));
    this.connecting ??= (async () => {
      await this.client.connect();
      await this.caller.start();
      await this.server.start();
    })();
    return this.connecting;
  }

  /**
   * Stops taking calls (the instance leaves the RPC registry), rejects this
   * client's pending calls with CancelledError, lets handlers in progress
   * finish within `closeTimeoutMs` (then fires their signals), and closes
   * the RedisClient when this RPC client created it.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.connecting?.catch(() => undefined);
      await this.caller.close();
      await this.server.close(this.closeTimeoutMs);
      if (this.ownsClient) await this.client.close();
    })();
    return this.closing;
  }

  // ---- calling ----

  call<D extends FunctionCatalogue<any, 'module'>, K extends FunctionName<D>>(module: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
  call<R = unknown>(moduleName: string, fn: string, ...args: unknown[]): Promise<R>;
  call(module: string | FunctionCatalogue, fn: string, ...args: unknown[]): Promise<unknown> {
    return this.invoke('module', module, fn, args, undefined);
  }

  callService<D extends FunctionCatalogue<any, 'service'>, K extends FunctionName<D>>(service: D, fn: K, ...args: FunctionArgs<D, K>): Promise<FunctionResult<D, K>>;
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
    if (typeof options !== 'object' || options === null) throw new ValidationError(`call options must be an object; received ${describe(options)}`);
    if (options.timeoutMs !== undefined) positiveInteger('timeoutMs (call option)', options.timeoutMs);
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new ValidationError(`signal (call option) must be an AbortSignal; received ${describe(options.signal)}`);
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
    if (typeof fn !== 'string' || fn.length === 0 || RESERVED.test(fn)) return Promise.reject(new ValidationError(`function name must be a non-empty string not starting with "$"; received ${describe(fn)}`));
    if (typeof handler !== 'function') return Promise.reject(new ValidationError(`handler of "${fn}" must be a function; received ${describe(handler)}`));
    if (this.closing) return Promise.reject(new ValidationError(`cannot expose "${fn}": the RPC client is closing`));
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
    return this.server.expose(scope, name, topic, fn, handler as RpcHandler, options.definition);
  }

  /**
   * Serves every function of a declaration with handlers typed by it; each
   * request's arguments (and each result) are checked against the
   * declaration, and refused arguments reach the caller as ValidationError.
   */
  async implement<D extends FunctionCatalogue>(declaration: D, handlers: Implementation<D>): Promise<void> {
    if (typeof declaration !== 'object' || declaration === null || typeof declaration.topic !== 'string') {
      throw new ValidationError(`implement needs a declaration from defineFunctions; received ${describe(declaration)}`);
    }
    const missing = Object.keys(declaration.functions).filter((fn) => typeof (handlers as Record<string, unknown>)[fn] !== 'function');
    if (missing.length > 0) throw new ValidationError(`implement of ${declaration.scope} "${declaration.name}" has no handler for ${missing.map((fn) => `"${fn}"`).join(', ')}`);
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

  /** Counters of calls made and requests served. */
  stats(): RpcStats {
    return { ...this.caller.stats(), ...this.server.stats(), inFlight: this.caller.inFlight, serving: this.server.load };
  }

  // ---- internals ----

  private invoke(scope: RpcScope, target: string | FunctionCatalogue, fn: string, args: unknown[], options: CallOptions | undefined): Promise<unknown> {
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
      return Promise.reject(new ValidationError(`${scope === 'service' ? 'callService' : 'call'} needs ${expected}; received ${describe(target)}`));
    }
    if (typeof fn !== 'string' || fn.length === 0) return Promise.reject(new ValidationError(`function name must be a non-empty string; received ${describe(fn)}`));
    const timeoutMs = options?.timeoutMs ?? this.timeoutMs;
    const idempotent = options?.idempotent ?? definition?.idempotent ?? false;
    return this.caller.call(resolved, fn, args, timeoutMs, options?.signal, idempotent);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined || (typeof value !== 'object' && typeof value !== 'function')) return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : `an object (${(value as object).constructor?.name ?? 'Object'})`;
}

function positiveInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new ValidationError(`${option} must be a positive integer; received ${describe(value)}`);
  return value;
}

function nonNegativeInteger(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ValidationError(`${option} must be a non-negative integer; received ${describe(value)}`);
  return value;
}
