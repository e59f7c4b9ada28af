import { senderOf, type Sender } from '../envelope/sender';
import { performance } from 'node:perf_hooks';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { withinMs } from '../route/withinMs';
import { checkArguments, checkValue, schemaType, type Checked, type FunctionDefinition, type RpcScope } from '../../vars/functions';
import { Names } from '../../vars/names';
import type { Codec } from '../envelope/codec';
import type { ActionResult } from '../envelope/types';
import { CancelledError } from '../errors/CancelledError';
import { NoHandlerError } from '../errors/NoHandlerError';
import type { Route, Unsubscribe } from '../route/Route';
import { RequestContext, type CallContext } from './CallContext';
import type { RpcAnnouncement } from './InstanceDirectory';
import {
  callerNameProblem,
  describeThrown,
  invalidRequestBodyReason,
  invalidRequestHeadersReason,
  invalidRequestReason,
  type Fault,
  type RpcErrorReply,
  type RpcRequest,
  type RpcRequestBody,
  type RpcQueryBody,
  QUERY_FUNCTION,
  type RpcRequestHeaders,
  type RpcResultReply,
} from './wire';
import { unencodableReason } from '../envelope/sendable';
import { redisWasAway, ReplyResender, type Resendable } from './ReplyResender';

/** Handles one function: receives the argument list and the call's context; may be async. */
export type RpcHandler<A extends unknown[] = any[], R = unknown> = (args: A, context: CallContext) => R | Promise<R>;

/** What `describe` reports about one exposed function. */
export interface FunctionInfo {
  /** The function's name. */
  name: string;
  /** What it does, when its declaration says. */
  description?: string;
  /** Argument types, when the function was declared. */
  args?: string[];
  /** Result type, when the function was declared. */
  result?: string;
  /** Whether its declaration marks it idempotent (retried on another instance when one dies mid-call), when declared. */
  idempotent?: boolean;
}

/** What `describe` reports about a served service or module. */
export interface TargetDescription {
  /** `service` or `module`. */
  scope: RpcScope;
  /** Service key or module name. */
  name: string;
  /** The instance that answered. */
  instanceId: string;
  /** The service of that instance. */
  service: string;
  /** The functions it serves, sorted by name (intracom's own `$` functions left out). */
  functions: FunctionInfo[];
}

interface Exposed {
  handler: RpcHandler;
  definition: FunctionDefinition | undefined;
}

/** One request on this instance, from its arrival to its reply. */
interface Job extends Resendable {
  request: RpcRequestBody;
  replyTo: string;
  /** Set once the request is accepted to run. */
  context: RequestContext | undefined;
  /** Undefined when no such function is exposed. */
  exposed: Exposed | undefined;
  /** Links of the list of accepted requests. */
  newer: Job | undefined;
  older: Job | undefined;
}

interface Served {
  scope: RpcScope;
  name: string;
  topic: string;
  /** The request channels of this instance, each with the caller service it alone carries (undefined: the open channel, any caller). */
  channels: ReadonlyArray<readonly [channel: string, caller: string | undefined]>;
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
  /** Replies to one caller leave as a frame once this many are queued. */
  sliceSize: number;
  heartbeatMs: number;
  registryTtlMs: number;
  /**
   * The services allowed to call this instance, each on its own channel
   * (`<topic>.<id>.from.<caller>`), the sending service then known from the
   * channel; undefined for the open channel, where the caller's name is its claim.
   */
  callers: readonly string[] | undefined;
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
  /**
   * Replies published again because no subscriber received them or Redis
   * could not take them (the caller's reply channel moving between shards,
   * a failover, an outage), until the caller's deadline.
   */
  repliesResent: number;
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
  /** Accepted requests (running or queued), newest first: linked through the jobs, so that the busy path allocates nothing; a cancel (rare) walks it. */
  private newestActive: Job | undefined;
  private readonly announcement: Buffer;
  /** Reply channels by caller service, then caller instance: an instance id alone names no caller (two services may both have a `node-1`). */
  private readonly replyChannels = new Map<string, Map<string, string>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private started = false;
  private closing = false;
  private inProgress = 0;
  /** While the requests of a batch are admitted: when it arrived, which also dates the replies its handlers return at once. */
  private batchReceivedAt: number | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly counters: RpcServerStats = { handled: 0, handlerErrors: 0, refusedBusy: 0, malformedRequests: 0, expiredInQueue: 0, repliesResent: 0 };
  private readonly resender = new ReplyResender<Job>((job) => this.postReply(job), this.counters);

  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;

  constructor(
    private readonly route: Route,
    private readonly names: Names,
    codec: Codec,
    private readonly service: string,
    private readonly instanceId: string,
    private readonly settings: RpcServerSettings,
    private readonly logger: Logger,
  ) {
    this.warnings = new RateLimitedLog(logger);
    const info: RpcAnnouncement = { instanceId, service, host: hostname(), pid: process.pid, startedAt: Date.now() };
    // callers read it to choose their channel: their own one when the instance names its callers
    if (settings.callers !== undefined) info.callers = [...settings.callers];
    this.announcement = codec.encode(info);
  }

  /** Registers a handler; once started, resolves when the target's channel is subscribed and announced. */
  expose(scope: RpcScope, name: string, topic: string, fn: string, handler: RpcHandler, definition: FunctionDefinition | undefined): Promise<void> {
    let served = this.served.get(topic);
    if (served === undefined) {
      const callers = this.settings.callers;
      const channels =
        callers === undefined
          ? [[this.names.rpcInstance(topic, this.instanceId), undefined] as const]
          : callers.map((caller) => [this.names.rpcInstance(topic, this.instanceId, caller), caller] as const);
      served = { scope, name, topic, channels, functions: new Map(), running: 0, queue: [], listening: undefined, unsubscribe: undefined };
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
    try {
      await Promise.all([...this.served.values()].map((served) => this.listen(served)));
    } catch (error) {
      // not started: a later start() (a retried connect) subscribes again
      this.started = false;
      clearInterval(this.heartbeat);
      throw error;
    }
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
            if (this.route.status === 'ready') await this.route.withdraw(Names.rpcRegistry(served.topic), this.instanceId);
          })
          .catch((error: unknown) => this.logger.warn({ err: error, target: served.topic }, 'could not leave the RPC registry cleanly')),
      );
      for (const job of served.queue.splice(0)) {
        this.inProgress -= 1;
        this.untrack(job);
        this.replyClosing(job);
      }
    }
    // Redis down: leaving waits at most the whole budget, and what is left of it goes to the handlers
    const started = performance.now();
    await withinMs(Promise.all(leaving), timeoutMs);
    const left = Math.max(0, timeoutMs - (performance.now() - started));
    this.warnings.flush();
    if (this.inProgress > 0) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
        timer.unref();
      });
      await Promise.race([idle, late]);
      clearTimeout(timer);
      if (this.inProgress > 0) {
        this.logger.warn({ running: this.inProgress, closeTimeoutMs: timeoutMs }, 'handlers still running at close; their signals fire');
        for (let job = this.newestActive; job !== undefined; job = job.older) {
          const context = job.context as RequestContext;
          context.abort(new CancelledError(context.target, context.functionName, `instance ${this.instanceId} closed before the handler finished (closeTimeoutMs ${timeoutMs})`));
        }
      }
    }
    const unsent = this.resender.close();
    if (unsent > 0) this.logger.warn({ replies: unsent }, 'replies waiting to be published again (no subscriber received them, or Redis could not take them) given up at close');
  }

  private listen(served: Served): Promise<void> {
    const listening = (served.listening ??= (async () => {
      served.unsubscribe ??= await this.subscribeAll(served);
      await this.route.announce(Names.rpcRegistry(served.topic), this.instanceId, this.announcement, this.settings.registryTtlMs);
      this.logger.debug({ target: served.name, channels: served.channels.length }, 'serving: subscribed and announced');
    })());
    listening.catch(() => {
      if (served.listening === listening) served.listening = undefined; // to be tried again
    });
    return listening;
  }

  /** Subscribes every request channel of a target; one unsubscribe for all. */
  private async subscribeAll(served: Served): Promise<Unsubscribe> {
    const unsubscribes = await Promise.all(served.channels.map(([channel, caller]) => this.route.subscribe(channel, (message) => this.receive(served, message, caller))));
    return async () => {
      await Promise.all(unsubscribes.map((unsubscribe) => unsubscribe()));
    };
  }

  private beat(): void {
    if (this.route.status !== 'ready') return;
    for (const served of this.served.values()) {
      if (served.listening === undefined) continue;
      this.route
        .announce(Names.rpcRegistry(served.topic), this.instanceId, this.announcement, this.settings.registryTtlMs)
        .catch((error: unknown) => {
          // a beat cut short by close() is not retried: close() lists what it abandoned
          if (!this.closing) this.warnings.warn(`heartbeat ${served.topic}`, { err: error, target: served.topic }, 'RPC heartbeat failed; will retry');
        });
    }
  }

  /** `from`: the caller service the channel carries (known, not claimed), undefined on the open channel. */
  private receive(served: Served, message: unknown, from: string | undefined): void {
    if (typeof message === 'object' && message !== null) {
      const control = message as { cancel?: unknown; probe?: unknown; payloads?: unknown; headers?: unknown };
      if (control.payloads !== undefined) return this.receiveBatch(served, control.headers, control.payloads, from);
      if (control.probe !== undefined) return;
      if (typeof control.cancel === 'string') return this.cancelJob(served, control.cancel, from);
    }
    const reason = invalidRequestReason(message) ?? forgedReason(message as RpcRequest, from);
    if (reason !== undefined) return this.malformed(served, reason, undefined, message, from);
    const request = message as RpcRequest;
    const replyTo = this.replyChannel(request.serviceNameSource, request.sourceInstance, served.name);
    if (replyTo === undefined) return this.malformed(served, callerNameProblem(request.serviceNameSource, request.sourceInstance) as string, undefined, message, from);
    this.admitAny(served, request, replyTo, request, senderOf(request, request.serviceNameSource), Date.now());
  }

  /**
   * A cancel stops only a request that came the way it came: to the same
   * target and, on a caller's own channel, from that caller (the channel says
   * who sent both). Another caller knowing the id cancels nothing.
   */
  private cancelJob(served: Served, queryId: string, from: string | undefined): void {
    for (let job = this.newestActive; job !== undefined; job = job.older) {
      const context = job.context;
      if (job.request.queryId !== queryId || context === undefined || context.target !== served.name) continue;
      // with `callers`, a request's callerService is the service of the channel it came on (a forged one is refused)
      if (from !== undefined && context.callerService !== from) continue;
      context.cancel('the caller cancelled it');
      return;
    }
  }

  /**
   * A SYNC or ASYNC query (it has a `type`) goes to the target's query
   * handler, the library's own {@link QUERY_FUNCTION}, which no function
   * call can name; anything else is a function call.
   */
  private admitAny(served: Served, caller: RpcRequestHeaders, replyTo: string, request: RpcRequestBody | RpcQueryBody, sender: Sender, receivedAt: number): void {
    if ('type' in request && request.type !== undefined) {
      const { queryId, timeout_ms } = request;
      return this.admit(served, caller, replyTo, { queryId, action: QUERY_FUNCTION, query: [request], timeout_ms }, true, sender, receivedAt);
    }
    this.admit(served, caller, replyTo, request as RpcRequestBody, false, sender, receivedAt);
  }

  /** Requests sharing their caller's half: `{ headers, payloads }`. */
  private receiveBatch(served: Served, headers: unknown, payloads: unknown, from: string | undefined): void {
    const reason = invalidRequestHeadersReason(headers) ?? forgedReason(headers as RpcRequestHeaders, from) ?? (Array.isArray(payloads) ? undefined : 'payloads is not an array');
    if (reason !== undefined) return this.malformed(served, reason, undefined, undefined, from);
    const caller = headers as RpcRequestHeaders;
    const replyTo = this.replyChannel(caller.serviceNameSource, caller.sourceInstance, served.name);
    if (replyTo === undefined) return this.malformed(served, callerNameProblem(caller.serviceNameSource, caller.sourceInstance) as string, undefined, undefined, from);
    // the requests of a batch share their caller's half, and so its sender
    const sender = senderOf(caller, caller.serviceNameSource);
    // and arrived together: one clock reading dates them all, and the replies their handlers return at once
    const receivedAt = Date.now();
    this.batchReceivedAt = receivedAt;
    try {
      for (const body of payloads as unknown[]) {
        const invalid = invalidRequestBodyReason(body);
        if (invalid === undefined) this.admitAny(served, caller, replyTo, body as RpcRequestBody | RpcQueryBody, sender, receivedAt);
        else this.malformed(served, invalid, caller, body, from);
      }
    } finally {
      this.batchReceivedAt = undefined;
    }
  }

  /** Answers a well-formed request at once (no such function, closing, busy) or runs or queues it. */
  private admit(served: Served, caller: RpcRequestHeaders, replyTo: string, request: RpcRequestBody, isQuery: boolean, sender: Sender, receivedAt: number): void {
    const fn = request.action;
    const exposed = isQuery || fn !== QUERY_FUNCTION ? served.functions.get(fn) : undefined;
    if (exposed === undefined) {
      const job = newJob(request, replyTo, undefined);
      if (fn === DESCRIBE) return this.succeed(job, this.describe(served));
      const available = [...served.functions.keys()].filter((name) => !name.startsWith('$'));
      const message = isQuery ? `${served.name} takes no queries (only a service does)` : `no function "${fn}"`;
      this.replyError(job, { ok: false, errorName: 'NoHandlerError', message, data: { available } }, 'no-handler');
      return;
    }
    const job = newJob(request, replyTo, exposed);
    if (this.closing) {
      this.replyClosing(job);
      return;
    }
    if (served.running >= this.settings.concurrency && served.queue.length >= this.settings.maxQueued) {
      this.counters.refusedBusy += 1;
      this.replyError(
        job,
        { ok: false, errorName: 'ServiceBusyError', message: `instance ${this.instanceId} has ${served.running} handlers running and ${served.queue.length} queued (concurrency, maxQueued)` },
        'busy',
      );
      return;
    }
    const context = new RequestContext(caller.serviceNameSource, caller.sourceInstance, request.queryId, fn, served.name, receivedAt + request.timeout_ms, request.timeout_ms, sender);
    job.context = context;
    this.inProgress += 1;
    this.track(job);
    if (served.running < this.settings.concurrency) this.run(served, job);
    else served.queue.push(job);
  }

  private track(job: Job): void {
    job.older = this.newestActive;
    if (this.newestActive !== undefined) this.newestActive.newer = job;
    this.newestActive = job;
  }

  private untrack(job: Job): void {
    if (job.newer === undefined) this.newestActive = job.older;
    else job.newer.older = job.older;
    if (job.older !== undefined) job.older.newer = job.newer;
    job.newer = undefined;
    job.older = undefined;
  }

  /** Logs a request that is not one; answers it when it says who asked. */
  private malformed(served: Served, reason: string, caller: RpcRequestHeaders | undefined, message: unknown, from: string | undefined): void {
    this.counters.malformedRequests += 1;
    this.warnings.warn(`malformed ${served.topic}`, { target: served.topic, from, reason }, 'malformed RPC request skipped');
    const partial = message as Partial<RpcRequest> | null | undefined;
    const queryId = partial?.queryId;
    // on a caller's own channel the answer goes to that caller, whatever the request claims
    const service = from ?? caller?.serviceNameSource ?? partial?.serviceNameSource;
    const instance = caller?.sourceInstance ?? partial?.sourceInstance;
    if (typeof queryId !== 'string' || typeof service !== 'string' || typeof instance !== 'string') return;
    // names that break the rules build no channel: such a request is only counted and logged
    const replyTo = this.replyChannel(service, instance, served.name);
    if (replyTo === undefined) return;
    // the action is only echoed when it is a string: String() of a hostile map (a non-callable toString) throws
    const request = { queryId, action: typeof partial?.action === 'string' ? partial.action : '', query: [], timeout_ms: 1 };
    const job = newJob(request, replyTo, undefined);
    this.replyError(job, { ok: false, errorName: 'MalformedMessageError', message: `malformed RPC request: ${reason}` }, 'malformed');
  }

  /**
   * The reply channel a request names (its caller's service and instance, both, and the
   * target it called), built once per caller: a busy instance answers the same few callers again and again.
   * Undefined when either name breaks the name rules of docs/protocol.md (`a}b*`, `x.from.y`, an instance
   * id `events`): checked when the channel is first built, so a cached channel's names are known valid.
   */
  private replyChannel(service: string, instanceId: string, callee: string): string | undefined {
    const cacheKey = callee === this.service ? service : `${service}\u0000${callee}`;
    let ofService = this.replyChannels.get(cacheKey);
    const cached = ofService?.get(instanceId);
    if (cached !== undefined) return cached;
    if (callerNameProblem(service, instanceId) !== undefined) return undefined;
    if (ofService === undefined) {
      if (this.replyChannels.size >= 1024) this.replyChannels.clear();
      ofService = new Map();
      this.replyChannels.set(cacheKey, ofService);
    }
    if (ofService.size >= 4096) ofService.clear();
    const channel = this.names.rpcReplies(service, instanceId, callee);
    ofService.set(instanceId, channel);
    return channel;
  }

  private run(served: Served, job: Job): void {
    served.running += 1;
    const { request } = job;
    const definition = (job.exposed as Exposed).definition;
    if (definition === undefined) return this.invoke(served, job, request.query);
    let checked: ReturnType<typeof checkArguments>;
    try {
      checked = checkArguments(definition, request.action, request.query);
    } catch (error) {
      return this.checkFailed(served, job, error);
    }
    if (checked instanceof Promise) {
      checked.then(
        (outcome) => this.invokeChecked(served, job, outcome),
        (error: unknown) => this.checkFailed(served, job, error),
      );
    } else this.invokeChecked(served, job, checked);
  }

  /**
   * The declaration itself failed while checking (not the caller's
   * arguments): the caller gets a RemoteError at once rather than waiting
   * out its timeout, and the handler slot is released.
   */
  private checkFailed(served: Served, job: Job, error: unknown): void {
    this.counters.handlerErrors += 1;
    this.logger.error({ err: error, fn: job.request.action }, 'checking the arguments against the declaration threw');
    this.replyError(job, { ok: false, errorName: 'Error', message: `the declaration of ${job.request.action} failed while checking its arguments: ${error instanceof Error ? error.message : String(error)}` });
    this.finish(served, job);
  }

  private invokeChecked(served: Served, job: Job, checked: Checked<unknown[]>): void {
    if (checked.ok) return this.invoke(served, job, checked.value);
    this.replyError(job, { ok: false, errorName: 'ValidationError', code: 'ERR_VALIDATION', message: checked.reason }, 'invalid-arguments');
    this.finish(served, job);
  }

  private invoke(served: Served, job: Job, args: unknown[]): void {
    const { context } = job;
    const exposed = job.exposed as Exposed;
    let outcome: unknown;
    try {
      outcome = exposed.handler(args, context as RequestContext);
    } catch (error) {
      this.fail(job, error);
      return this.finish(served, job);
    }
    if (outcome !== null && typeof outcome === 'object' && typeof (outcome as PromiseLike<unknown>).then === 'function') {
      (outcome as Promise<unknown>).then(
        (result) => {
          this.succeed(job, result);
          this.finish(served, job);
        },
        (error: unknown) => {
          this.fail(job, error);
          this.finish(served, job);
        },
      );
    } else {
      this.succeed(job, outcome);
      this.finish(served, job);
    }
  }

  private finish(served: Served, job: Job): void {
    const context = job.context as RequestContext;
    served.running -= 1;
    this.inProgress -= 1;
    this.counters.handled += 1;
    this.untrack(job);
    context.dispose();
    while (served.queue.length > 0 && served.running < this.settings.concurrency) {
      const next = served.queue.shift() as Job;
      if ((next.context as RequestContext).aborted) {
        // the caller gave up (timeout or cancel) while it waited: nobody wants the answer
        this.counters.expiredInQueue += 1;
        this.inProgress -= 1;
        this.untrack(next);
        continue;
      }
      this.run(served, next);
    }
    if (this.inProgress === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private succeed(job: Job, result: unknown): void {
    const definition = job.exposed?.definition;
    if (definition === undefined) return this.send(job, result);
    const checked = checkValue(definition.result, result, `the result of ${job.request.action}`);
    if (checked instanceof Promise) void checked.then((outcome) => this.sendChecked(job, outcome));
    else this.sendChecked(job, checked);
  }

  private sendChecked(job: Job, checked: Checked<unknown>): void {
    if (checked.ok) return this.send(job, checked.value);
    this.counters.handlerErrors += 1;
    this.logger.error({ fn: job.request.action, reason: checked.reason }, 'a handler returned a result its declaration refuses');
    this.replyError(job, { ok: false, errorName: 'ValidationError', code: 'ERR_RESULT_INVALID', message: checked.reason });
  }

  private send(job: Job, result: unknown): void {
    const unsendable = unencodableReason(result, 'the result');
    if (unsendable !== undefined) {
      this.counters.handlerErrors += 1;
      this.replyError(job, { ok: false, errorName: 'TypeError', code: 'ERR_RESULT_NOT_SENDABLE', message: unsendable });
      return;
    }
    const reply: RpcResultReply = { queryId: job.request.queryId, result };
    this.startReply(job, reply);
  }

  /** The first publish of a reply: until the caller's deadline it may be published again ({@link ReplyResender}). */
  private startReply(job: Job, reply: RpcResultReply | RpcErrorReply): void {
    const now = this.batchReceivedAt ?? Date.now();
    this.resender.start(job, reply, job.context?.deadline ?? now + job.request.timeout_ms, now);
    this.postReply(job);
  }

  private postReply(job: Job): void {
    const done = 'result' in (job.reply as RpcResultReply | RpcErrorReply) ? this.resultWritten : this.errorWritten;
    this.route.post(job.replyTo, job.reply, undefined, job, done, this.settings.sliceSize);
  }

  /**
   * The result could not be encoded or is too large: say so instead of
   * leaving the caller to time out. Redis away is not the result's fault:
   * the reply is published again, and the caller never told of a failure
   * that is not its call's.
   */
  private readonly resultWritten = (job: Job, error: unknown, receivers: number | undefined): void => {
    if (this.resender.retry(job, error, receivers) || error === undefined) return;
    if (redisWasAway(error)) return this.errorWritten(job, error, receivers);
    const response = describeThrown(error);
    response.code ??= 'ERR_RESULT_NOT_SENDABLE';
    this.replyError(job, response);
  };

  private readonly errorWritten = (job: Job, error: unknown, receivers: number | undefined): void => {
    if (this.resender.retry(job, error, receivers)) return;
    if (error !== undefined) this.warnings.warn('reply not sent', { err: error, fn: job.request.action }, 'could not send an RPC reply');
  };

  private fail(job: Job, error: unknown): void {
    this.counters.handlerErrors += 1;
    // cancelled, or past its deadline: the caller has already stopped waiting (its own timer or signal
    // decides the error it sees), so an answer here could only race it with a less precise error
    if (job.context?.aborted) return;
    this.logger.debug({ err: error, fn: job.request.action }, 'a handler failed; the caller gets a RemoteError');
    // a query whose action has no handler is intracom's refusal, not the handler's failure: like an
    // unknown function, the reply lists what this instance does handle
    if (job.request.action === QUERY_FUNCTION && error instanceof NoHandlerError) {
      this.replyError(job, { ok: false, errorName: 'NoHandlerError', message: error.message, data: { available: error.available } }, 'no-handler');
      return;
    }
    this.replyError(job, describeThrown(error));
  }

  /** An error reply: the handler's (no `fault`), or intracom's own with the `fault` that says why. */
  private replyError(job: Job, error: ActionResult, fault?: Fault): void {
    const reply: RpcErrorReply = fault === undefined ? { queryId: job.request.queryId, instanceId: this.instanceId, error } : { queryId: job.request.queryId, instanceId: this.instanceId, error, fault };
    this.startReply(job, reply);
  }

  private replyClosing(job: Job): void {
    this.replyError(job, { ok: false, errorName: 'ServiceBusyError', message: `instance ${this.instanceId} is closing` }, 'closing');
  }

  private describe(served: Served): TargetDescription {
    const functions: FunctionInfo[] = [];
    for (const [name, { definition }] of served.functions) {
      if (name.startsWith('$')) continue; // the library's own functions ($query) are not the service's API
      const info: FunctionInfo = { name };
      if (definition !== undefined) {
        if (definition.description !== undefined) info.description = definition.description;
        info.args = definition.args.map(schemaType);
        info.result = schemaType(definition.result);
        info.idempotent = definition.idempotent ?? false;
      }
      functions.push(info);
    }
    functions.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { scope: served.scope, name: served.name, instanceId: this.instanceId, service: this.service, functions };
  }
}

function newJob(request: RpcRequestBody, replyTo: string, exposed: Exposed | undefined): Job {
  return { request, replyTo, context: undefined, exposed, newer: undefined, older: undefined, reply: undefined, replyAttempts: 0, replyUntil: 0, replyTimer: undefined };
}

/** Why a request on a caller's own channel is refused: it claims another caller (a forged source), or undefined. */
function forgedReason(claim: { serviceNameSource?: unknown } | undefined, from: string | undefined): string | undefined {
  if (from === undefined || claim?.serviceNameSource === from) return undefined;
  return `serviceNameSource ${JSON.stringify(claim?.serviceNameSource)} differs from the caller its channel carries (${JSON.stringify(from)}): a forged source`;
}
