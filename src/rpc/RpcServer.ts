import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { invalidArgumentsReason, type FunctionDefinition, type RpcScope } from '../../vars/functions';
import type { Names } from '../../vars/names';
import type { Codec } from '../envelope/codec';
import type { ActionResult } from '../envelope/types';
import { CancelledError } from '../errors/CancelledError';
import type { Route, Unsubscribe } from '../route/Route';
import { RequestContext, type CallContext } from './CallContext';
import type { RpcAnnouncement } from './InstanceDirectory';
import { describeThrown, invalidRequestReason, unencodableReason, type Fault, type RpcErrorReply, type RpcRequest, type RpcResultReply } from './wire';

/** Handles one function: receives the argument list and the call's context; may be async. */
export type RpcHandler<A extends unknown[] = any[], R = unknown> = (args: A, context: CallContext) => R | Promise<R>;

/** What `describe` reports about one exposed function. */
export interface FunctionInfo {
  name: string;
  description?: string;
  /** Argument types, when the function was declared. */
  args?: string[];
  /** Result type, when the function was declared. */
  result?: string;
  idempotent?: boolean;
}

/** What `describe` reports about a served service or module. */
export interface TargetDescription {
  scope: RpcScope;
  /** Service key or module name. */
  name: string;
  /** The instance that answered. */
  instanceId: string;
  /** The service of that instance. */
  service: string;
  functions: FunctionInfo[];
}

interface Exposed {
  handler: RpcHandler;
  definition: FunctionDefinition | undefined;
}

interface Job {
  request: RpcRequest;
  replyTo: string;
  context: RequestContext;
  exposed: Exposed;
}

interface Served {
  scope: RpcScope;
  name: string;
  topic: string;
  channel: string;
  functions: Map<string, Exposed>;
  running: number;
  queue: Job[];
  listening: Promise<void> | undefined;
  unsubscribe: Unsubscribe | undefined;
}

/** Settings of the serving side. */
export interface RpcServerSettings {
  concurrency: number;
  maxQueued: number;
  heartbeatMs: number;
  registryTtlMs: number;
}

/** Counters of the serving side. */
export interface RpcServerStats {
  /** Requests whose handler ran to completion (success or error). */
  handled: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
  /** Requests refused because the concurrency limit and the queue were full. */
  refusedBusy: number;
  /** Requests that did not decode as requests (logged and skipped). */
  malformedRequests: number;
  /** Requests dropped because their deadline passed while queued. */
  expiredInQueue: number;
}

const DESCRIBE = '$describe';

/**
 * The serving side of RPC: takes the requests sent to this instance's
 * channel of each served target, runs the handlers with bounded concurrency
 * (excess requests queue, then are refused), and replies to the caller's
 * reply channel. Nothing a request contains can crash the process: a
 * malformed request is logged, a bad argument or a throwing handler is
 * answered with an error.
 */
export class RpcServer {
  private readonly served = new Map<string, Served>();
  private readonly active = new Map<string, RequestContext>();
  private readonly announcement: Buffer;
  private readonly replyChannels = new Map<string, string>();
  private heartbeat: NodeJS.Timeout | undefined;
  private started = false;
  private closing = false;
  private inProgress = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly counters: RpcServerStats = { handled: 0, handlerErrors: 0, refusedBusy: 0, malformedRequests: 0, expiredInQueue: 0 };

  constructor(
    private readonly route: Route,
    private readonly names: Names,
    codec: Codec,
    private readonly service: string,
    private readonly instanceId: string,
    private readonly settings: RpcServerSettings,
    private readonly logger: Logger,
  ) {
    const info: RpcAnnouncement = { instanceId, service, host: hostname(), pid: process.pid, startedAt: Date.now() };
    this.announcement = codec.encode(info);
  }

  /** Registers a handler; once started, resolves when the target's channel is subscribed and announced. */
  expose(scope: RpcScope, name: string, topic: string, fn: string, handler: RpcHandler, definition: FunctionDefinition | undefined): Promise<void> {
    let served = this.served.get(topic);
    if (served === undefined) {
      served = { scope, name, topic, channel: this.names.rpcInstance(topic, this.instanceId), functions: new Map(), running: 0, queue: [], listening: undefined, unsubscribe: undefined };
      this.served.set(topic, served);
    }
    served.functions.set(fn, { handler, definition });
    return this.started ? this.listen(served) : Promise.resolve();
  }

  /** Removes a handler; calls to it are then answered with NoHandlerError. */
  unexpose(topic: string, fn: string): boolean {
    return this.served.get(topic)?.functions.delete(fn) ?? false;
  }

  /** Names of the functions exposed on a target by this instance. */
  exposedFunctions(topic: string): string[] {
    return [...(this.served.get(topic)?.functions.keys() ?? [])];
  }

  /** Subscribes every served target and starts the registry heartbeat. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.heartbeat = setInterval(() => this.beat(), this.settings.heartbeatMs);
    this.heartbeat.unref();
    await Promise.all([...this.served.values()].map((served) => this.listen(served)));
  }

  /** Requests in progress or queued. */
  get load(): number {
    return this.inProgress;
  }

  stats(): RpcServerStats {
    return { ...this.counters };
  }

  /**
   * Stops taking requests (unsubscribes, leaves the registry), answers the
   * queued ones with a `closing` fault (their callers try another instance),
   * waits up to `timeoutMs` for the handlers in progress, then fires the
   * signals of those still running.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const leaving: Promise<unknown>[] = [];
    for (const served of this.served.values()) {
      if (served.listening === undefined) continue;
      leaving.push(
        served.listening
          .then(async () => {
            await served.unsubscribe?.();
            if (this.route.status === 'ready') await this.route.withdraw(served.topic, this.instanceId);
          })
          .catch((error: unknown) => this.logger.warn({ err: error, target: served.topic }, 'could not leave the RPC registry cleanly')),
      );
      for (const job of served.queue.splice(0)) {
        this.inProgress -= 1;
        this.active.delete(job.request.queryId);
        this.replyFault(job.request, job.replyTo, 'closing', { ok: false, errorName: 'ServiceBusyError', message: `instance ${this.instanceId} is closing` });
      }
    }
    await Promise.all(leaving);
    if (this.inProgress > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      });
      await Promise.race([idle, late]);
      clearTimeout(timer);
      if (this.inProgress > 0) {
        this.logger.warn({ running: this.inProgress, closeTimeoutMs: timeoutMs }, 'handlers still running at close; their signals fire');
        for (const context of this.active.values()) context.abort(new CancelledError(context.target, context.functionName, `instance ${this.instanceId} closed before the handler finished (closeTimeoutMs ${timeoutMs})`));
      }
    }
  }

  private listen(served: Served): Promise<void> {
    served.listening ??= (async () => {
      served.unsubscribe = await this.route.subscribe(served.channel, (message) => this.receive(served, message));
      await this.route.announce(served.topic, this.instanceId, this.announcement, this.settings.registryTtlMs);
    })();
    return served.listening;
  }

  private beat(): void {
    if (this.route.status !== 'ready') return;
    for (const served of this.served.values()) {
      if (served.listening === undefined) continue;
      this.route
        .announce(served.topic, this.instanceId, this.announcement, this.settings.registryTtlMs)
        .catch((error: unknown) => this.logger.warn({ err: error, target: served.topic }, 'RPC heartbeat failed; will retry'));
    }
  }

  private receive(served: Served, message: unknown): void {
    if (typeof message === 'object' && message !== null) {
      const control = message as { cancel?: unknown; probe?: unknown };
      if (control.probe !== undefined) return;
      if (typeof control.cancel === 'string') {
        this.active.get(control.cancel)?.cancel('the caller cancelled it');
        return;
      }
    }
    const reason = invalidRequestReason(message);
    if (reason !== undefined) {
      this.counters.malformedRequests += 1;
      this.logger.warn({ channel: served.channel, reason }, 'malformed RPC request skipped');
      const partial = message as Partial<RpcRequest> | null;
      if (typeof partial?.queryId === 'string' && typeof partial.serviceNameSource === 'string' && typeof partial.sourceInstance === 'string') {
        const replyTo = this.replyChannel(partial.serviceNameSource, partial.sourceInstance);
        this.replyFault(partial as RpcRequest, replyTo, 'malformed', { ok: false, errorName: 'MalformedMessageError', message: `malformed RPC request: ${reason}` });
      }
      return;
    }
    const request = message as RpcRequest;
    const replyTo = this.replyChannel(request.serviceNameSource, request.sourceInstance);
    const fn = request.action;
    const exposed = served.functions.get(fn);
    if (exposed === undefined) {
      if (fn === DESCRIBE) return this.succeed(request, replyTo, this.describe(served), undefined);
      const available = [...served.functions.keys()].filter((name) => !name.startsWith('$'));
      this.replyFault(request, replyTo, 'no-handler', { ok: false, errorName: 'NoHandlerError', message: `no function "${fn}"`, data: { available } });
      return;
    }
    if (this.closing) {
      this.replyFault(request, replyTo, 'closing', { ok: false, errorName: 'ServiceBusyError', message: `instance ${this.instanceId} is closing` });
      return;
    }
    const context = new RequestContext(request.serviceNameSource, request.sourceInstance, request.queryId, fn, served.name, Date.now() + request.timeout_ms, request.timeout_ms);
    const job: Job = { request, replyTo, context, exposed };
    if (served.running < this.settings.concurrency) {
      this.inProgress += 1;
      this.active.set(request.queryId, context);
      this.run(served, job);
    } else if (served.queue.length < this.settings.maxQueued) {
      this.inProgress += 1;
      this.active.set(request.queryId, context);
      served.queue.push(job);
    } else {
      this.counters.refusedBusy += 1;
      this.replyFault(request, replyTo, 'busy', {
        ok: false,
        errorName: 'ServiceBusyError',
        message: `instance ${this.instanceId} has ${served.running} handlers running and ${served.queue.length} queued (concurrency, maxQueued)`,
      });
    }
  }

  /** The reply channel of a caller (cached: a busy instance answers the same few callers again and again). */
  private replyChannel(service: string, instanceId: string): string {
    let channel = this.replyChannels.get(instanceId);
    if (channel === undefined) {
      if (this.replyChannels.size >= 4096) this.replyChannels.clear();
      channel = this.names.rpcReplies(service, instanceId);
      this.replyChannels.set(instanceId, channel);
    }
    return channel;
  }

  private run(served: Served, job: Job): void {
    served.running += 1;
    const { request, replyTo, context, exposed } = job;
    const definition = exposed.definition;
    if (definition !== undefined) {
      const reason = invalidArgumentsReason(definition, request.action, request.query);
      if (reason !== undefined) {
        this.replyFault(request, replyTo, 'invalid-arguments', { ok: false, errorName: 'ValidationError', code: 'ERR_VALIDATION', message: reason });
        return this.finish(served, context);
      }
    }
    let outcome: unknown;
    try {
      outcome = exposed.handler(request.query, context);
    } catch (error) {
      this.fail(request, replyTo, error, context);
      return this.finish(served, context);
    }
    if (outcome !== null && typeof outcome === 'object' && typeof (outcome as PromiseLike<unknown>).then === 'function') {
      (outcome as Promise<unknown>).then(
        (result) => {
          this.succeed(request, replyTo, result, definition);
          this.finish(served, context);
        },
        (error: unknown) => {
          this.fail(request, replyTo, error, context);
          this.finish(served, context);
        },
      );
    } else {
      this.succeed(request, replyTo, outcome, definition);
      this.finish(served, context);
    }
  }

  private finish(served: Served, context: RequestContext): void {
    served.running -= 1;
    this.inProgress -= 1;
    this.counters.handled += 1;
    this.active.delete(context.requestId);
    context.dispose();
    while (served.queue.length > 0 && served.running < this.settings.concurrency) {
      const next = served.queue.shift() as Job;
      if (next.context.aborted) {
        // the caller gave up (timeout or cancel) while it waited: nobody wants the answer
        this.counters.expiredInQueue += 1;
        this.inProgress -= 1;
        this.active.delete(next.request.queryId);
        continue;
      }
      this.run(served, next);
    }
    if (this.inProgress === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private succeed(request: RpcRequest, replyTo: string, result: unknown, definition: FunctionDefinition | undefined): void {
    if (definition !== undefined) {
      const reason = definition.result.check(result, `the result of ${request.action}`);
      if (reason !== undefined) {
        this.counters.handlerErrors += 1;
        this.logger.error({ fn: request.action, reason }, 'a handler returned a result its declaration refuses');
        this.replyError(request, replyTo, { ok: false, errorName: 'ValidationError', code: 'ERR_RESULT_INVALID', message: reason });
        return;
      }
    }
    const unsendable = unencodableReason(result, 'the result');
    if (unsendable !== undefined) {
      this.counters.handlerErrors += 1;
      this.replyError(request, replyTo, { ok: false, errorName: 'TypeError', code: 'ERR_RESULT_NOT_SENDABLE', message: unsendable });
      return;
    }
    const reply: RpcResultReply = { queryId: request.queryId, result };
    this.route.publish(replyTo, reply).catch((error: unknown) => {
      // the result could not be encoded or is too large: say so instead of leaving the caller to time out
      const response = describeThrown(error);
      response.code ??= 'ERR_RESULT_NOT_SENDABLE';
      this.replyError(request, replyTo, response);
    });
  }

  private fail(request: RpcRequest, replyTo: string, error: unknown, context: RequestContext): void {
    this.counters.handlerErrors += 1;
    // cancelled, or past its deadline: the caller has already stopped waiting (its own timer or signal
    // decides the error it sees), so an answer here could only race it with a less precise error
    if (context.aborted) return;
    this.logger.debug({ err: error, fn: request.action }, 'a handler failed; the caller gets a RemoteError');
    this.replyError(request, replyTo, describeThrown(error));
  }

  private replyFault(request: RpcRequest, replyTo: string, fault: Fault, error: ActionResult): void {
    const reply: RpcErrorReply = { queryId: request.queryId, instanceId: this.instanceId, error, fault };
    this.route.publish(replyTo, reply).catch((failure: unknown) => this.logger.warn({ err: failure, fn: request.action }, 'could not send an RPC reply'));
  }

  private replyError(request: RpcRequest, replyTo: string, error: ActionResult): void {
    const reply: RpcErrorReply = { queryId: request.queryId, instanceId: this.instanceId, error };
    this.route.publish(replyTo, reply).catch((failure: unknown) => this.logger.warn({ err: failure, fn: request.action }, 'could not send an RPC reply'));
  }

  private describe(served: Served): TargetDescription {
    const functions: FunctionInfo[] = [];
    for (const [name, { definition }] of served.functions) {
      if (name.startsWith('$')) continue; // the library's own functions ($query) are not the service's API
      const info: FunctionInfo = { name };
      if (definition !== undefined) {
        if (definition.description !== undefined) info.description = definition.description;
        info.args = definition.args.map((schema) => schema.type);
        info.result = definition.result.type;
        info.idempotent = definition.idempotent ?? false;
      }
      functions.push(info);
    }
    functions.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { scope: served.scope, name: served.name, instanceId: this.instanceId, service: this.service, functions };
  }
}
