import { MAX_TIMER_MS } from '../envelope/validate';
import type { Sender } from '../envelope/sender';
import { createQuery, monotonicNs } from '../envelope/query';
import { QueryRoute, QueryState, QueryType, type ActionResult, type Query } from '../envelope/types';
import { CancelledError } from '../errors/CancelledError';
import { IntracomError } from '../errors/IntracomError';
import { NoHandlerError } from '../errors/NoHandlerError';
import { RemoteError } from '../errors/RemoteError';
import { TimeoutError } from '../errors/TimeoutError';
import { ValidationError } from '../errors/ValidationError';
import type { QueryContext, QueryHandlers } from './QueryHandlers';
import { describeValue } from '../../vars/describe';
import { assertAbortSignal } from '../../vars/options';

/** Sends the lean query request of `envelope` (docs/protocol.md) to one instance of its destination and resolves with the result. */
export type QueryCall = (destination: string, envelope: Query, timeoutMs: number, signal: AbortSignal) => Promise<unknown>;

/** A SYNC or ASYNC query as it arrives (docs/protocol.md, "SYNC and ASYNC"), already checked by the RPC server. */
export interface QueryRequest {
  queryId: string;
  type: 'SYNC' | 'ASYNC';
  action: string | number;
  query: unknown;
  timeout_ms: number;
}

/** Options of an ASYNC or SYNC query. */
export interface QueryRequestOptions {
  /** Time allowed, in ms (the envelope's `timeout_ms`). @default the RPC client's timeoutMs */
  timeoutMs?: number;
  /** Cancels the query: the handle goes to ERROR with CancelledError, and the handler's signal fires. */
  signal?: AbortSignal;
}

/**
 * The handle of an ASYNC query: the envelope itself, whose `state` goes
 * PENDING, then DONE or ERROR, with `result`, `response` and `response_ts`
 * filled in. `promise` resolves with the handle when it settles (it never
 * rejects); `error` then holds the typed error of an ERROR; `wait()`
 * resolves with the result or rejects with that error.
 */
export type QueryHandle<R = unknown> = Query & {
  readonly promise: Promise<QueryHandle<R>>;
  readonly error: IntracomError | undefined;
  wait(): Promise<R>;
};

/** A service hosted in this process that takes the `local` shortcut. */
export interface LocalService {
  handlers: QueryHandlers;
}

/**
 * ASYNC and SYNC: a query handled by exactly one instance, carried by the RPC
 * machinery (one instance chosen from the registry, one timeout, the typed
 * errors of RPC), so both types share its guarantees and its speed.
 */
/**
 * Per caller signal, the controllers of the queries that follow it, behind one
 * abort listener: a signal may serve any number of queries, at once or one
 * after another (a request's whole life), without adding a listener per query.
 */
const followers = new WeakMap<AbortSignal, { controllers: Set<AbortController>; onAbort: () => void }>();

/** Aborts `controller` when `signal` fires; the returned function stops following (called when the query settles). */
function follow(signal: AbortSignal, controller: AbortController): () => void {
  if (signal.aborted) {
    controller.abort(signal.reason);
    return () => undefined;
  }
  let group = followers.get(signal);
  if (group === undefined) {
    const controllers = new Set<AbortController>();
    const onAbort = (): void => {
      followers.delete(signal);
      for (const follower of controllers) follower.abort(signal.reason);
    };
    group = { controllers, onAbort };
    followers.set(signal, group);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const joined = group;
  joined.controllers.add(controller);
  return () => {
    if (!joined.controllers.delete(controller) || joined.controllers.size > 0) return;
    if (followers.get(signal) === joined) followers.delete(signal);
    signal.removeEventListener('abort', joined.onAbort);
  };
}

export class QueryRequests {
  private readonly pending = new Map<string, { handle: QueryHandle; controller: AbortController }>();

  constructor(
    private readonly service: string,
    private readonly handlers: QueryHandlers,
    private readonly call: QueryCall,
    private readonly defaultTimeoutMs: number,
    private readonly local: (destination: string) => LocalService | undefined,
  ) {}

  /** Sends an ASYNC query and returns its handle at once. */
  sendAsync<R = unknown>(destination: string, action: number | string, query: unknown, options: QueryRequestOptions = {}): QueryHandle<R> {
    return this.request<R>(QueryType.ASYNC, destination, action, query, options);
  }

  /** Sends a SYNC query and resolves with its result, or rejects with the typed error. */
  async sendSync<R = unknown>(destination: string, action: number | string, query: unknown, options: QueryRequestOptions = {}): Promise<R> {
    return this.request<R>(QueryType.SYNC, destination, action, query, options).wait();
  }

  /** Sends an ASYNC or SYNC query and returns its handle at once. */
  request<R>(type: QueryType.ASYNC | QueryType.SYNC, destination: string, action: number | string, query: unknown, options: QueryRequestOptions): QueryHandle<R> {
    const timeoutMs = this.timeout(options.timeoutMs);
    assertAbortSignal('signal', options.signal);
    const localService = this.local(destination);
    const envelope = createQuery({
      serviceNameSource: this.service,
      serviceNameDest: destination,
      type,
      action,
      query,
      timeout_ms: timeoutMs,
      route: localService ? QueryRoute.LOCAL : QueryRoute.REDIS,
    });
    return this.dispatch<R>(envelope, localService, options.signal);
  }

  /**
   * The handle of an ASYNC or SYNC query refused before it was sent (the
   * client is closed): settled at once, state ERROR with `error`, as any
   * failed query (its promise never rejects).
   */
  refused<R>(type: QueryType.ASYNC | QueryType.SYNC, destination: string, action: number | string, error: IntracomError): QueryHandle<R> {
    const envelope = createQuery({ serviceNameSource: this.service, serviceNameDest: destination, type, action, query: null, timeout_ms: 0 });
    return this.dispatch<R>(envelope, undefined, undefined, Promise.reject(error));
  }

  /**
   * Serves one SYNC or ASYNC query request on this instance (`args[0]` is
   * the request, checked by the RPC server): rebuilds its envelope and runs
   * the action's handler.
   */
  async serve(args: unknown[], context: { readonly callerService: string; readonly signal: AbortSignal; readonly sender: Sender }): Promise<unknown> {
    const request = args[0] as QueryRequest;
    const envelope = createQuery({
      queryId: request.queryId,
      serviceNameSource: context.callerService,
      serviceNameDest: this.service,
      route: QueryRoute.REDIS,
      type: request.type === 'SYNC' ? QueryType.SYNC : QueryType.ASYNC,
      action: request.action,
      query: request.query,
      timeout_ms: request.timeout_ms,
    });
    envelope.processAttempts = 1;
    return this.runHandler(envelope, context.signal, context.sender);
  }

  /** Queries of this client still pending. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Waits up to `graceMs` for pending ASYNC and SYNC queries, then cancels
   * the rest (state ERROR, CancelledError).
   */
  async close(graceMs: number): Promise<void> {
    if (this.pending.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.all([...this.pending.values()].map(({ handle }) => handle.promise)), grace]);
      clearTimeout(timer);
    }
    for (const { handle, controller } of this.pending.values()) controller.abort(new CancelledError(handle.serviceNameDest, String(handle.action), 'the client closed before the answer came'));
    await Promise.all([...this.pending.values()].map(({ handle }) => handle.promise));
  }

  private dispatch<R>(envelope: Query, localService: LocalService | undefined, signal: AbortSignal | undefined, failed?: Promise<never>): QueryHandle<R> {
    const controller = new AbortController();
    const unfollow = signal === undefined ? undefined : follow(signal, controller);
    let error: IntracomError | undefined;
    const settle = (state: QueryState, result: unknown, response: ActionResult, failure?: IntracomError): QueryHandle<R> => {
      unfollow?.();
      envelope.state = state;
      envelope.result = result;
      envelope.response = response;
      envelope.response_ts = monotonicNs();
      envelope.processAttempts = Math.max(envelope.processAttempts, 1);
      error = failure;
      this.pending.delete(envelope.queryId);
      return handle;
    };
    const outcome =
      failed ?? (localService ? this.runLocal(localService, envelope, controller.signal) : this.call(envelope.serviceNameDest, envelope, envelope.timeout_ms, controller.signal));
    const promise = outcome.then(
      (result) => settle(QueryState.DONE, result, { ok: true }),
      (cause: unknown) => {
        const failure = this.typed(cause, envelope);
        return settle(QueryState.ERROR, null, { ok: false, errorName: failure.name, code: failure.code, message: failure.message }, failure);
      },
    );
    const handle = envelope as QueryHandle<R>;
    // non-enumerable: the handle stays an envelope when encoded or logged
    Object.defineProperties(handle, {
      promise: { value: promise, enumerable: false },
      error: { get: () => error, enumerable: false },
      wait: {
        value: async () => {
          await promise;
          if (error) throw error;
          return envelope.result as R;
        },
        enumerable: false,
      },
    });
    this.pending.set(envelope.queryId, { handle, controller });
    return handle;
  }

  private async runLocal(localService: LocalService, envelope: Query, signal: AbortSignal): Promise<unknown> {
    const handler = localService.handlers.get(envelope.action);
    if (handler === undefined) throw new NoHandlerError(envelope.serviceNameDest, String(envelope.action), localService.handlers.actions(), 'action');
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(envelope.serviceNameDest, String(envelope.action), envelope.timeout_ms)), envelope.timeout_ms);
    });
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.invokeHandler(handler, envelope, signal, { service: envelope.serviceNameSource, verified: true }), expired, aborted]);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async runHandler(query: Query, signal: AbortSignal, sender: Sender): Promise<unknown> {
    const handler = this.handlers.get(query.action);
    if (handler === undefined) throw new NoHandlerError(query.serviceNameDest, String(query.action), this.handlers.actions(), 'action');
    return this.invokeHandler(handler, query, signal, sender);
  }

  private invokeHandler(handler: NonNullable<ReturnType<QueryHandlers['get']>>, query: Query, signal: AbortSignal, sender: Sender): Promise<unknown> {
    const context: QueryContext = {
      queryId: query.queryId,
      type: query.type,
      action: query.action,
      serviceNameSource: query.serviceNameSource,
      sender,
      processAttempts: 1,
      envelope: query,
      signal,
      extend: async () => true, // no claim: the caller's timeout governs
    };
    return Promise.resolve(handler(query.query, context));
  }

  /**
   * The typed error of a failed query; an unknown action stays a
   * NoHandlerError naming the action and the actions the instance handles.
   */
  private typed(cause: unknown, envelope: Query): IntracomError {
    if (cause instanceof NoHandlerError) {
      return new NoHandlerError(envelope.serviceNameDest, String(envelope.action), cause.available, 'action');
    }
    if (cause instanceof RemoteError && cause.remoteName === 'NoHandlerError') {
      const data = cause.data as { available?: unknown } | undefined;
      const available = Array.isArray(data?.available) ? data.available.filter((item): item is string => typeof item === 'string') : [];
      return new NoHandlerError(envelope.serviceNameDest, String(envelope.action), available, 'action');
    }
    if (cause instanceof IntracomError) return cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    return new RemoteError(envelope.serviceNameDest, String(envelope.action), 'local', { name: cause instanceof Error ? cause.name : 'Error', message });
  }

  private timeout(timeoutMs: number | undefined): number {
    const value = timeoutMs ?? this.defaultTimeoutMs;
    if (!Number.isSafeInteger(value) || value <= 0) throw new ValidationError(`timeoutMs must be a positive integer; received ${describeValue(value)}`);
    if (value > MAX_TIMER_MS) throw new ValidationError(`timeoutMs must be at most ${MAX_TIMER_MS} ms (the longest Node.js timer); received ${describeValue(value)}`);
    return value;
  }
}
