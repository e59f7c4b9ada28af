import { verifiedSenderOf } from '../envelope/sender';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Names } from '../../vars/names';
import { CancelledError } from '../errors/CancelledError';
import { ConnectionLostError } from '../errors/ConnectionLostError';
import { IntracomError } from '../errors/IntracomError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { MalformedReports } from '../log/MalformedReports';
import { NoHandlerError } from '../errors/NoHandlerError';
import { NoServiceError } from '../errors/NoServiceError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { PermissionError } from '../errors/PermissionError';
import { RemoteError } from '../errors/RemoteError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { doublingPause } from './ReplyResender';
import { ServiceBusyError } from '../errors/ServiceBusyError';
import { TimeoutError } from '../errors/TimeoutError';
import { ValidationError } from '../errors/ValidationError';
import { RateLimitedLog } from '../log/RateLimitedLog';
import type { Route, Unsubscribe } from '../route/Route';
import { Deadlines, type Timed } from './Deadlines';
import { TransientMap } from '../route/TransientMap';
import type { InstanceDirectory, InstanceLoad, RpcTarget } from './InstanceDirectory';
import { unencodableReason } from '../envelope/sendable';
import { invalidReplyReason, type RpcErrorReply, type RpcQueryBody, type RpcRequestBody, type RpcRequestHeaders } from './wire';
import { ShortIds } from '../envelope/ids';
import { debugEnabled } from '../log/logger';

/** Pauses before a request Redis refused unrun is sent again: the first, and the longest as they double. */
const FIRST_RESEND_PAUSE_MS = 25;
const MAX_RESEND_PAUSE_MS = 1000;

interface PendingCall extends Timed {
  readonly id: string;
  readonly target: RpcTarget;
  readonly fn: string;
  /** Emptied once settled, as are the other fields that reach the call's values ({@link RpcCaller.settle} says why). */
  args: unknown[];
  readonly timeoutMs: number;
  readonly idempotent: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Instance the current attempt went to. */
  instanceId: string | undefined;
  /** What the directory counts for that instance while the attempt is unanswered. */
  load: InstanceLoad | undefined;
  channel: string | undefined;
  /** When the current attempt was sent (`performance.now()`, ms). */
  sentAt: number;
  attempts: number;
  /** Instances (incarnations) that refused or were gone, not to be tried again for this call. */
  tried: Set<InstanceLoad> | undefined;
  busy: number;
  refreshed: boolean;
  /** The request of the current attempt (a write's outcome is matched to its attempt by identity). */
  request: RpcRequestBody | RpcQueryBody | undefined;
  /** Set for a SYNC or ASYNC query: what its request carries instead of a function and arguments. */
  query: QueryRequestBody | undefined;
}

/** What a SYNC or ASYNC query request carries besides its id and timeout. */
export type QueryRequestBody = Pick<RpcQueryBody, 'type' | 'action' | 'query'>;

/** The reply channel of one callee: subscribed on the first call to it, before that call's request leaves. */
interface ReplyPath {
  readonly channel: string;
  unsubscribe: Unsubscribe | undefined;
  /** The subscription in progress, when any. */
  subscribing: Promise<void> | undefined;
}

/** Counter values that fit in 4 base-36 digits. */
const ID_COUNTER_LIMIT = 36 ** 4;

// A promise's settlers, taken by a shared executor instead of a closure per call (the executor runs synchronously).
let capturedResolve: (value: unknown) => void = () => undefined;
let capturedReject: (error: unknown) => void = () => undefined;
function captureSettlers(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** What a settled call's settlers and arguments become. */
const settledAlready = (): void => undefined;
const NO_ARGS: unknown[] = [];

/** Counters of the calling side. */
export interface RpcCallerStats {
  /** Calls started. */
  calls: number;
  /** Calls answered with a result. */
  succeeded: number;
  /** Calls that ended with an error (of any class). */
  failed: number;
  /** Calls that ran out of time. */
  timedOut: number;
  /** Requests sent again to another instance (gone, busy, or lost while idempotent). */
  rerouted: number;
  /** Replies for calls no longer pending (late after a timeout, cancel or reroute). */
  lateReplies: number;
  /** Replies that did not decode as replies (logged; the call they name, when pending, fails with MalformedMessageError). */
  malformedReplies: number;
  /** Replies to a call of a service signed by another service (authentication on): dropped, as a fake instance's would be. */
  impostorReplies: number;
}

/** Settings of the calling side. */
export interface RpcCallerSettings {
  service: string;
  instanceId: string;
  probeIntervalMs: number;
  /** Requests to one instance leave as a frame once this many are queued. */
  sliceSize: number;
  /** `burst`: a tick's calls to one target go to one instance (up to `sliceSize`), the least-given one not full; `call`: each call to the next instance. */
  spread: RpcSpread;
}

/** How a caller spreads calls over the instances of a target (see the `spread` option). */
export type RpcSpread = 'burst' | 'call';

/**
 * The calling side of RPC: sends each request to one live instance of the
 * target (from the registry, per burst or per call: see InstanceDirectory.pick), matches replies by request id on
 * this instance's own reply channel, and turns every way a call can end into
 * its own error class.
 */
export class RpcCaller {
  /** The calls in flight by id (a TransientMap, not a Map: see there why). */
  private readonly pending = new TransientMap<string, PendingCall>();
  private readonly deadlines = new Deadlines<PendingCall>((call) => this.onTimeout(call));
  /** Reply channels by callee (service key or module name): one per (this instance, callee), so that a callee reads no reply another sends. */
  private readonly replies = new Map<string, ReplyPath>();
  /** The caller's half of every request, sent once per frame. */
  private readonly headers: RpcRequestHeaders;
  private started = false;
  /** Instance channel -> when its listener was last proven there (`performance.now()`): a reply from it, or an exact subscriber count. */
  private readonly heard = new Map<string, number>();
  /** Exact subscriber counts being read, by channel. */
  private readonly checks = new Map<string, Promise<number>>();
  private readonly warnings: RateLimitedLog;
  /** Invalid replies: counted one by one, logged once per channel and turn (no error built per reply). */
  private readonly malformedReplyReports = new MalformedReports(
    (error) => void this.warnings.warn('malformed reply', { err: error }, 'malformed RPC reply skipped'),
    () => undefined,
  );
  private probeTimer: NodeJS.Timeout | undefined;
  private connectionDown = false;
  private closed = false;
  /** 48 random bits drawn again every ID_COUNTER_LIMIT calls, and a counter: unique request ids without a UUID per call. */
  private readonly ids = new ShortIds(6, ID_COUNTER_LIMIT);
  /** Debug lines per call only when the logger writes them: no fields are built otherwise. */
  private readonly debug: boolean;
  private readonly counters: RpcCallerStats = { calls: 0, succeeded: 0, failed: 0, timedOut: 0, rerouted: 0, lateReplies: 0, malformedReplies: 0, impostorReplies: 0 };
  /** Calls one instance may take in one tick's burst (1: spread per call). */
  private readonly burstSize: number;

  constructor(
    private readonly route: Route,
    private readonly names: Names,
    private readonly directory: InstanceDirectory,
    private readonly settings: RpcCallerSettings,
    private readonly logger: Logger,
  ) {
    this.debug = debugEnabled(logger);
    this.warnings = new RateLimitedLog(logger);
    this.headers = { serviceNameSource: settings.service, sourceInstance: settings.instanceId };
    this.burstSize = settings.spread === 'burst' ? settings.sliceSize : 1;
    route.on('connectionLost', this.onConnectionLost);
    route.on('ready', this.onReady);
  }

  /** Starts the liveness probe; each callee's reply channel is subscribed on the first call to it. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.probeTimer = setInterval(this.probe, this.settings.probeIntervalMs);
    this.probeTimer.unref();
  }

  /** The reply path of a callee, its subscription started when new. */
  private replyPath(callee: string): ReplyPath {
    let path = this.replies.get(callee);
    if (path === undefined) {
      const channel = this.names.rpcReplies(this.settings.service, this.settings.instanceId, callee);
      const created: ReplyPath = { channel, unsubscribe: undefined, subscribing: undefined };
      created.subscribing = this.route.subscribe(channel, (message) => this.onReply(message, callee)).then(
        (unsubscribe) => {
          created.subscribing = undefined;
          if (this.closed) {
            unsubscribe().catch(() => undefined);
            return;
          }
          created.unsubscribe = unsubscribe;
          this.logger.debug({ channel }, 'subscribed to the reply channel');
        },
        (error: unknown) => {
          // to be tried again by the next call
          if (this.replies.get(callee) === created) this.replies.delete(callee);
          throw PermissionError.from(`subscribe to the replies of "${callee}"`, error);
        },
      );
      path = created;
      this.replies.set(callee, path);
    }
    return path;
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.pending.size;
  }

  stats(): RpcCallerStats {
    return { ...this.counters };
  }

  /** Starts a call. */
  call(target: RpcTarget, fn: string, args: unknown[], timeoutMs: number, signal: AbortSignal | undefined, idempotent: boolean, query?: QueryRequestBody): Promise<unknown> {
    this.counters.calls += 1;
    if (this.closed || !this.started) {
      this.counters.failed += 1;
      return Promise.reject(new NotConnectedError(`call "${target.name}" function "${fn}"`, this.closed ? 'closed' : 'not connected'));
    }
    if (this.connectionDown || this.route.status !== 'ready') {
      this.counters.failed += 1;
      return Promise.reject(new ConnectionLostError(`cannot call "${target.name}" function "${fn}": the connection to Redis is down (${this.route.status}); retry once it is back`));
    }
    if (signal?.aborted) {
      this.counters.failed += 1;
      return Promise.reject(new CancelledError(target.name, fn, 'its signal had already fired', signal.reason));
    }
    const unsendable = query === undefined ? unencodableReason(args, 'arguments') : unencodableReason(query.query, 'query');
    if (unsendable !== undefined) {
      this.counters.failed += 1;
      return Promise.reject(new ValidationError(`cannot call "${target.name}" function "${fn}": ${unsendable}`));
    }
    const promise = new Promise<unknown>(captureSettlers);
    const call: PendingCall = {
      id: this.newCallId(),
      target,
      fn,
      args,
      timeoutMs,
      idempotent,
      resolve: capturedResolve,
      reject: capturedReject,
      deadline: 0,
      line: undefined,
      earlier: undefined,
      later: undefined,
      signal,
      onAbort: undefined,
      instanceId: undefined,
      load: undefined,
      channel: undefined,
      sentAt: 0,
      attempts: 0,
      tried: undefined,
      busy: 0,
      refreshed: false,
      request: undefined,
      query,
    };
    this.pending.set(call.id, call);
    this.deadlines.add(call, timeoutMs);
    if (signal !== undefined) {
      call.onAbort = () => this.cancel(call, 'its signal fired', signal.reason);
      signal.addEventListener('abort', call.onAbort, { once: true });
    }
    this.dispatch(call);
    return promise;
  }

  /** Rejects every pending call (the client is closing) and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    for (const call of [...this.pending.values()]) this.cancel(call, 'the RPC client is closing');
    this.deadlines.clear();
    this.route.off('connectionLost', this.onConnectionLost);
    this.route.off('ready', this.onReady);
    const paths = [...this.replies.values()];
    this.replies.clear();
    await Promise.all(paths.map((path) => path.unsubscribe?.().catch((error: unknown) => this.logger.warn({ err: error }, 'could not unsubscribe a reply channel'))));
    this.warnings.flush();
  }

  // ---- sending ----

  /**
   * At most 12 characters (8 of prefix, 4 of counter): V8 builds longer
   * concatenations as cons strings, flattened again when hashed and encoded
   * (docs/benchmarks.md).
   */
  private newCallId(): string {
    return this.ids.next();
  }

  private dispatch(call: PendingCall): void {
    const target = call.target;
    const replies = this.replyPath(target.name);
    if (replies.subscribing !== undefined) return this.subscribeThenDispatch(call, replies.subscribing);
    if (this.directory.needsRead(target)) return this.readThenDispatch(call);
    // a first attempt that waited for nothing leaves as the call starts: the reading its deadline was counted from serves
    const now = call.attempts === 0 && !call.refreshed ? call.deadline - call.timeoutMs : performance.now();
    const load = this.directory.pick(target, call.tried, now, this.burstSize);
    if (load === undefined) {
      if (!call.refreshed) return this.readThenDispatch(call);
      if (call.busy > 0) return this.fail(call, new ServiceBusyError(target.name, call.fn, call.busy, Math.max(0, (call.tried?.size ?? call.busy) - call.busy)));
      const detail = call.tried === undefined ? 'no live instance is registered' : `none of the ${call.tried.size} registered instance(s) takes calls any more (gone, or closing)`;
      return this.fail(call, new NoServiceError(target.name, call.fn, detail));
    }
    const instanceId = load.id;
    const channel = this.directory.channel(target, instanceId);
    if (channel === null) {
      const accepted = this.directory.acceptedCallers(target, instanceId) ?? [];
      return this.fail(call, new PermissionError(`call "${target.name}" function "${call.fn}"`, `instance ${instanceId} takes calls only from ${accepted.map((caller) => JSON.stringify(caller)).join(', ') || 'no service'}, not from "${this.settings.service}"`));
    }
    call.instanceId = instanceId;
    call.channel = channel;
    call.request = undefined;
    call.load = load;
    this.directory.take(target, load);
    // PUBLISH's receiver count includes pattern subscribers (a watcher of `*`): only an exact count proves the instance listens
    if (now - (this.heard.get(channel) ?? -Infinity) <= this.settings.probeIntervalMs) return this.send(call, now);
    this.listening(channel).then(
      (count) => {
        if (this.pending.get(call.id) !== call || call.channel !== channel || call.request !== undefined) return;
        if (count > 0) return this.send(call, performance.now());
        // registered but not listening (crashed): the request never left, so another instance may take it
        this.directory.suspect(call.target, load);
        this.reroute(call, instanceId);
      },
      (error: unknown) => {
        if (this.pending.get(call.id) !== call || call.channel !== channel || call.request !== undefined) return;
        this.logger.debug({ err: error }, 'could not check that an instance listens; sending anyway');
        this.send(call, performance.now());
      },
    );
  }

  private send(call: PendingCall, now: number): void {
    call.attempts += 1;
    call.sentAt = now;
    const timeout_ms = Math.max(1, Math.floor(call.deadline - now));
    const request: RpcRequestBody | RpcQueryBody =
      call.query === undefined ? { queryId: call.id, action: call.fn, query: call.args, timeout_ms } : { queryId: call.id, type: call.query.type, action: call.query.action, query: call.query.query, timeout_ms };
    call.request = request;
    if (this.debug) this.logger.debug({ target: call.target.name, fn: call.fn, requestId: call.id, instance: call.instanceId, attempt: call.attempts }, 'call sent');
    this.route.post(call.channel as string, request, this.headers, request, this.onSent, this.settings.sliceSize);
  }

  /** Whether anyone subscribes to an instance channel exactly: one check in flight per channel, a positive answer remembered. */
  private listening(channel: string): Promise<number> {
    let check = this.checks.get(channel);
    if (check === undefined) {
      check = this.route.channelSubscribers([channel]).then(
        ([count]) => {
          this.checks.delete(channel);
          if (count > 0) this.heardFrom(channel);
          return count;
        },
        (error: unknown) => {
          this.checks.delete(channel);
          throw error;
        },
      );
      this.checks.set(channel, check);
    }
    return check;
  }

  /** Records proof that an instance channel has its listener (a reply came, or an exact count said so). */
  private heardFrom(channel: string, now = performance.now()): void {
    if (this.heard.size >= 4096 && !this.heard.has(channel)) this.heard.clear();
    this.heard.set(channel, now);
  }

  /** How the write of a request ended (one shared callback: no closure or promise per call). */
  private readonly onSent = (request: RpcRequestBody | RpcQueryBody, error: unknown, receivers: number | undefined): void => {
    if (error === undefined && receivers !== 0) return; // written and heard: nothing to do, whatever became of the call
    const call = this.pending.get(request.queryId);
    if (call === undefined || call.request !== request) return; // settled, or already sent again elsewhere
    if (error !== undefined) {
      if (error instanceof RedisUnavailableError && error.applied === false && this.sendAgainLater(call, request)) return;
      if (error instanceof IntracomError) return this.fail(call, error);
      if (PermissionError.isRefusal(error)) return this.fail(call, PermissionError.from(`call "${call.target.name}" function "${call.fn}"`, error));
      return this.fail(call, new ValidationError(`cannot send the call to "${call.target.name}" function "${call.fn}": ${error instanceof Error ? error.message : String(error)}`));
    }
    // The request reached no one, so it may go again: to the same instance if it is listening after all (on a cluster, the
    // slot of its channel may have just moved, and its subscription follows within channelSubscribers' grace), else elsewhere.
    const instanceId = call.instanceId as string;
    const channel = call.channel as string;
    this.heard.delete(channel);
    const gone = (): void => {
      if (this.pending.get(call.id) !== call || call.request !== request) return;
      if (call.load !== undefined) this.directory.suspect(call.target, call.load);
      this.reroute(call, instanceId);
    };
    this.listening(channel).then((count) => {
      if (count === 0) return gone();
      if (this.pending.get(call.id) === call && call.request === request) this.send(call, performance.now());
    }, gone);
  };

  /**
   * Redis refused the request before running it (its channel's slot on the
   * move, MOVED while nobody owns it; CLUSTERDOWN; BUSY): nothing left for
   * the instance, so it is sent again after a pause, the pauses doubling,
   * while the call's deadline allows. False when it does not.
   */
  private sendAgainLater(call: PendingCall, request: RpcRequestBody | RpcQueryBody): boolean {
    const pause = doublingPause(FIRST_RESEND_PAUSE_MS, MAX_RESEND_PAUSE_MS, call.attempts - 1);
    if (performance.now() + pause >= call.deadline) return false;
    const timer = setTimeout(() => {
      if (this.pending.get(call.id) === call && call.request === request) this.send(call, performance.now());
    }, pause);
    timer.unref(); // the call's own deadline holds the process while it waits
    return true;
  }

  private subscribeThenDispatch(call: PendingCall, subscribing: Promise<void>): void {
    subscribing.then(
      () => {
        if (this.pending.get(call.id) === call) this.dispatch(call);
      },
      (error: unknown) => {
        if (this.pending.get(call.id) !== call) return;
        this.fail(call, error instanceof IntracomError ? error : new ConnectionLostError(`call to "${call.target.name}" function "${call.fn}" could not subscribe its reply channel: ${error instanceof Error ? error.message : String(error)}`));
      },
    );
  }

  private readThenDispatch(call: PendingCall): void {
    call.refreshed = true;
    this.directory.refresh(call.target).then(
      () => {
        if (this.pending.get(call.id) === call) this.dispatch(call);
      },
      (error: unknown) => {
        if (this.pending.get(call.id) !== call) return;
        this.fail(call, new NoServiceError(call.target.name, call.fn, `the registry could not be read (${error instanceof Error ? error.message : String(error)})`));
      },
    );
  }

  private reroute(call: PendingCall, from: string): void {
    const load = call.load;
    this.unload(call);
    if (load !== undefined) (call.tried ??= new Set()).add(load);
    else this.logger.debug({ fn: call.fn, instanceId: from }, 'rerouted a call not given to an instance');
    call.instanceId = undefined;
    call.channel = undefined;
    call.request = undefined;
    this.counters.rerouted += 1;
    this.dispatch(call);
  }

  // ---- receiving ----

  /** A reply on the channel of `callee`: only a call to that callee takes it. */
  private onReply(message: unknown, callee: string): void {
    const queryId = typeof message === 'object' && message !== null ? (message as { queryId?: unknown }).queryId : undefined;
    const call = typeof queryId === 'string' ? this.pending.get(queryId) : undefined;
    if (call === undefined || call.target.name !== callee) {
      const reason = invalidReplyReason(message);
      if (reason === undefined) this.counters.lateReplies += 1;
      else {
        // no call to fail: counted one by one, logged once per frame (no error built per reply)
        this.counters.malformedReplies += 1;
        this.malformedReplyReports.add(this.replies.get(callee)?.channel ?? callee, reason);
      }
      return;
    }
    const signer = verifiedSenderOf(message);
    if (signer !== undefined && call.target.scope === 'service' && signer.service !== call.target.name) {
      // a service's instances sign as that service; anyone else answering (a fake instance in its registry) is ignored
      this.counters.impostorReplies += 1;
      this.warnings.warn(`impostor reply ${call.target.name}`, { target: call.target.name, signer: signer.service }, 'reply signed by another service than the one called; dropped');
      return;
    }
    const failure = message as Partial<RpcErrorReply> & { result?: unknown };
    // an error reply of an instance this call is no longer at is late, whatever it holds
    if (failure.error !== undefined && typeof failure.instanceId === 'string' && failure.instanceId !== call.instanceId) {
      this.counters.lateReplies += 1;
      return;
    }
    const reason = invalidReplyReason(message);
    if (reason !== undefined) {
      // the call's answer came and cannot be read: waiting on would only end in a TimeoutError that hides why
      const error = this.malformedReply(callee, `the reply to "${call.target.name}" function "${call.fn}" (instance ${call.instanceId ?? 'none yet'}): ${reason}`, 'malformed RPC reply; its call fails');
      return this.fail(call, error);
    }
    // the instance listened when the request reached it, after it was sent: no clock read per reply
    if (call.channel !== undefined) this.heardFrom(call.channel, call.sentAt);
    if (call.load !== undefined && (call.load.silent || call.target.suspects.size > 0)) this.directory.answered(call.target, call.load);
    if (failure.error === undefined) return this.succeed(call, failure.result);
    const reply = failure as RpcErrorReply;
    const response = reply.error;
    const name = call.target.name;
    switch (reply.fault) {
      case 'no-handler': {
        const data = response.data as { available?: unknown } | undefined;
        const available = Array.isArray(data?.available) ? data.available.filter((item): item is string => typeof item === 'string') : [];
        return this.fail(call, new NoHandlerError(name, call.fn, available));
      }
      case 'invalid-arguments':
        return this.fail(call, new ValidationError(`"${name}" refused the arguments of "${call.fn}": ${response.message ?? 'invalid arguments'}`));
      case 'busy':
        call.busy += 1;
        return this.reroute(call, reply.instanceId);
      case 'closing':
        // the instance is leaving the registry: avoided by every call, and the list this call chose from may be read again
        if (call.load !== undefined) this.directory.suspect(call.target, call.load);
        call.refreshed = false;
        return this.reroute(call, reply.instanceId);
      default:
        return this.fail(
          call,
          new RemoteError(name, call.fn, reply.instanceId, {
            // both checked as strings by invalidReplyReason
            name: response.errorName as string,
            message: response.message as string,
            code: response.code,
            data: response.data,
          }),
        );
    }
  }

  /** Counts and logs (rate-limited) a reply that is not one; the error says where it came from and why. */
  private malformedReply(callee: string, reason: string, line: string): MalformedMessageError {
    this.counters.malformedReplies += 1;
    const error = new MalformedMessageError(this.replies.get(callee)?.channel ?? callee, reason);
    this.warnings.warn('malformed reply', { err: error }, line);
    return error;
  }

  // ---- endings ----

  private readonly onTimeout = (call: PendingCall): void => {
    if (this.pending.get(call.id) !== call) return;
    this.counters.timedOut += 1;
    if (call.load !== undefined && call.request !== undefined) this.directory.unanswered(call.target, call.load);
    this.fail(call, new TimeoutError(call.target.name, call.fn, call.timeoutMs));
  };

  private cancel(call: PendingCall, why: string, reason?: unknown): void {
    if (this.pending.get(call.id) !== call) return;
    const channel = call.channel;
    this.fail(call, new CancelledError(call.target.name, call.fn, why, reason));
    if (channel !== undefined && this.route.status === 'ready') {
      this.route.publish(channel, { cancel: call.id }).catch((error: unknown) => this.logger.debug({ err: error }, 'could not tell the instance about a cancel'));
    }
  }

  private succeed(call: PendingCall, value: unknown): void {
    const resolve = call.resolve;
    this.settle(call);
    if (this.debug) this.logger.debug({ target: call.target.name, fn: call.fn, requestId: call.id, ms: Math.round(performance.now() - call.sentAt) }, 'call answered');
    this.counters.succeeded += 1;
    resolve(value);
  }

  private fail(call: PendingCall, error: unknown): void {
    const reject = call.reject;
    this.settle(call);
    if (this.debug) this.logger.debug({ target: call.target.name, fn: call.fn, requestId: call.id, error: error instanceof Error ? error.name : String(error) }, 'call failed');
    this.counters.failed += 1;
    reject(error);
  }

  /** The current attempt no longer counts against its instance (answered, failed, or sent elsewhere). */
  private unload(call: PendingCall): void {
    if (call.load === undefined) return;
    this.directory.release(call.target, call.load);
    call.load = undefined;
  }

  /**
   * Ends a call's bookkeeping and lets go of everything it reached. With
   * many calls in flight, V8 may allocate the calls directly in the old
   * generation (they outlive a young collection often enough); a settled
   * call there still counts as alive for every young collection until the
   * next full one, and so would everything it points to: its promise, its
   * request, its arguments and its result, all promoted in turn.
   */
  private settle(call: PendingCall): void {
    this.unload(call);
    this.pending.delete(call.id);
    this.deadlines.remove(call);
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    call.resolve = settledAlready;
    call.reject = settledAlready;
    call.args = NO_ARGS;
    call.query = undefined;
    call.request = undefined;
    call.signal = undefined;
    call.onAbort = undefined;
    call.tried = undefined;
  }

  // ---- connection and liveness ----

  private readonly onConnectionLost = (info: { role?: string } | undefined): void => {
    this.connectionDown = true;
    if (this.pending.size === 0) return;
    const role = info?.role ?? 'a';
    this.logger.warn({ inFlight: this.pending.size, role }, 'connection to Redis lost; rejecting every call in flight');
    for (const call of [...this.pending.values()]) {
      this.fail(call, new ConnectionLostError(`call to "${call.target.name}" function "${call.fn}" lost its answer: the ${role} connection to Redis dropped`));
    }
  };

  private readonly onReady = (): void => {
    this.connectionDown = false;
  };

  /**
   * Every probe interval: for each instance holding a call sent more than an
   * interval ago, read how many connections subscribe to its channel
   * exactly (one command for all). Zero means the instance is gone mid-call
   * (a pattern subscriber such as a watcher of `*` does not count): its calls
   * fail with ConnectionLostError, or go to another instance when idempotent.
   */
  private readonly probe = (): void => {
    if (this.pending.size === 0 || this.connectionDown || this.route.status !== 'ready') return;
    const now = performance.now();
    const threshold = now - this.settings.probeIntervalMs;
    const channels = new Map<string, string>();
    let restarted: PendingCall[] | undefined;
    for (const call of this.pending.values()) {
      if (call.channel === undefined || call.instanceId === undefined || call.request === undefined || call.sentAt > threshold) continue;
      // a new process under the same id listens on the same channel: the counts below cannot tell that this call's one stopped
      if (call.load !== undefined && this.directory.replaced(call.target, call.load)) (restarted ??= []).push(call);
      else {
        channels.set(call.channel, call.instanceId);
        // the registry read that would show a restart under the same id, when no new call made one
        this.directory.refreshIfStale(call.target, now);
      }
    }
    if (restarted !== undefined) for (const call of restarted) this.lost(call, call.instanceId as string, 'it restarted (another process registered under its id)');
    if (channels.size === 0) return;
    const probed = [...channels];
    this.route.channelSubscribers(probed.map(([channel]) => channel)).then(
      (counts) => {
        probed.forEach(([channel, instanceId], i) => {
          if (counts[i] === 0) this.instanceLost(channel, instanceId);
        });
      },
      (error: unknown) => this.logger.debug({ err: error }, 'probe failed'),
    );
  };

  private instanceLost(channel: string, instanceId: string): void {
    this.heard.delete(channel);
    for (const call of [...this.pending.values()]) {
      if (call.channel !== channel || call.request === undefined) continue;
      this.lost(call, instanceId, 'it stopped listening (crashed or disconnected)');
    }
  }

  /** A call whose instance stopped before answering: sent elsewhere when idempotent, else ConnectionLostError. */
  private lost(call: PendingCall, instanceId: string, why: string): void {
    if (this.pending.get(call.id) !== call) return;
    if (call.load !== undefined) this.directory.suspect(call.target, call.load);
    if (call.idempotent) {
      this.logger.info({ fn: call.fn, instanceId }, 'instance lost mid-call; retrying the idempotent call on another instance');
      this.reroute(call, instanceId);
    } else {
      this.fail(call, new ConnectionLostError(`call to "${call.target.name}" function "${call.fn}" lost its instance ${instanceId}: ${why} before answering; the call may or may not have run`, instanceId));
    }
  }
}
