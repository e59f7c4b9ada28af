/**
 * What RPC puts on the wire, and the checks applied on receipt.
 *
 * A call is the SYNC query of the query envelope made lean: the request carries
 * the envelope fields a call needs, under the envelope's names, and nothing that the
 * transport already knows (every field costs encoding and decoding on every
 * call).
 *
 * - A request `{ queryId, serviceNameSource, sourceInstance, action, query,
 *   timeout_ms }` (`action` = function name, `query` = the argument array)
 *   goes to the channel of one instance: `<topic>.<instanceId>`. The reply
 *   channel follows from the caller's service and instance. The requests one
 *   caller sends to one instance in one tick share the caller's half:
 *   `{ headers: { serviceNameSource, sourceInstance }, payloads: [{ queryId,
 *   action, query, timeout_ms }, ...] }` (the same factoring as events), and
 *   a serving instance accepts both forms.
 * - A reply goes to the caller's reply channel: `{ queryId, result }` on
 *   success, `{ queryId, instanceId, error, fault? }` on failure, where
 *   `error` is an ActionResult and `fault` is set when intracom itself (not
 *   the handler) refused the call.
 * - A cancel (`{ cancel: queryId }`) goes to the same instance channel. A
 *   `{ probe: 1 }` there is ignored: liveness is read with PUBSUB NUMSUB, whose
 *   count, unlike PUBLISH's, leaves out pattern subscribers.
 */
import type { ActionResult } from '../envelope/types';
import { asNumber, MAX_TIMER_MS } from '../envelope/validate';
import { unencodableReason } from '../envelope/sendable';
import { describeValue } from '../../vars/describe';
import { instanceIdProblem, nameProblem } from '../../vars/define';

/**
 * The internal name under which a service's query handler (SYNC and ASYNC)
 * is registered with the RPC server. It never travels: a query request
 * carries `type` instead, and a function call naming it gets `no-handler`.
 */
export const QUERY_FUNCTION = '$query';

/** The caller's half of a request, shared by the requests of one frame. */
export interface RpcRequestHeaders {
  /** Service key of the caller. */
  serviceNameSource: string;
  /** Instance id of the caller. */
  sourceInstance: string;
}

/** The call's own half of a request. */
export interface RpcRequestBody {
  /** Unique id (a per-client random prefix and a counter). */
  queryId: string;
  /** The function name. */
  action: string;
  /** The arguments. */
  query: unknown[];
  /** Time the caller still waits, in ms. */
  timeout_ms: number;
}

/**
 * The call's own half of a SYNC or ASYNC query (the query envelope made
 * lean): `type` says it is a query, handled by the destination's query
 * handler for `action`, with `query` as its parameters.
 */
export interface RpcQueryBody {
  queryId: string;
  type: 'SYNC' | 'ASYNC';
  /** The action (the destination's vocabulary: a string or a number). */
  action: string | number;
  /** The parameters (any value). */
  query: unknown;
  timeout_ms: number;
}

/** A request envelope in one piece. */
export interface RpcRequest extends RpcRequestHeaders, RpcRequestBody {}

/** Requests sharing their caller's half. */
export interface RpcRequestBatch {
  headers: RpcRequestHeaders;
  payloads: RpcRequestBody[];
}

/**
 * Why intracom (not the handler) answered with an error: `no-handler` (no
 * such function), `invalid-arguments` (refused by the function's
 * declaration), `busy` (concurrency limit reached and queue full; the handler
 * never ran), `closing` (the instance is closing; the handler never ran),
 * `malformed` (the request envelope was malformed).
 */
export type Fault = 'no-handler' | 'invalid-arguments' | 'busy' | 'closing' | 'malformed';

/** A successful reply. */
export interface RpcResultReply {
  queryId: string;
  result: unknown;
}

/** A failed reply. */
export interface RpcErrorReply {
  queryId: string;
  /** The instance that answered. */
  instanceId: string;
  error: ActionResult;
  /** Set when intracom refused the call before or instead of running the handler. */
  fault?: Fault;
}

/** A reply. */
export type RpcReply = RpcResultReply | RpcErrorReply;

/** Tells an instance that the caller gave up on a call (its handler's signal fires). */
export interface RpcCancel {
  cancel: string;
}

function isShortString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 200;
}

/** Returns why `value` is not the caller's half of a request, or undefined. */
export function invalidRequestHeadersReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'request headers are not an object';
  const headers = value as Partial<RpcRequestHeaders>;
  if (!isShortString(headers.serviceNameSource)) return 'serviceNameSource must be a non-empty string of at most 200 characters';
  if (!isShortString(headers.sourceInstance)) return 'sourceInstance must be a non-empty string of at most 200 characters';
  return undefined;
}

/**
 * Why a caller's service or instance id cannot name its reply channel (the
 * name rules of docs/protocol.md: a service key, an instance id), or undefined.
 * A name such as `a}b*`, `x.from.y` or an instance id `events` would build
 * another party's channel, or one that an ACL pattern reads two ways.
 */
export function callerNameProblem(service: unknown, instanceId: unknown): string | undefined {
  return nameProblem('serviceNameSource', service) ?? instanceIdProblem('sourceInstance', instanceId);
}

/** Returns why `value` is not the call's half of a request (a call, or a SYNC or ASYNC query), or undefined. */
export function invalidRequestBodyReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'request is not an object';
  const request = value as { queryId?: unknown; type?: unknown; action?: unknown; query?: unknown; timeout_ms?: unknown };
  if (!isShortString(request.queryId)) return 'queryId must be a non-empty string of at most 200 characters';
  if (request.type !== undefined) {
    if (request.type !== 'SYNC' && request.type !== 'ASYNC') return 'type must be "SYNC" or "ASYNC" (or absent, for a function call)';
    if (typeof request.action === 'bigint') request.action = asNumber(request.action);
    if (typeof request.action !== 'string' && !(typeof request.action === 'number' && Number.isFinite(request.action))) return 'action is neither a string nor a number';
  } else {
    if (typeof request.action !== 'string') return 'action (the function name) is not a string';
    if (!Array.isArray(request.query)) return 'query (the argument list) is not an array';
  }
  const timeout = asNumber(request.timeout_ms);
  if (timeout === undefined || !(timeout > 0)) return 'timeout_ms is not a positive number';
  // any sender may state any deadline; none is kept longer than a Node.js timer waits
  request.timeout_ms = timeout > MAX_TIMER_MS ? MAX_TIMER_MS : timeout;
  return undefined;
}

/** Returns why `value` is not a request in one piece, or undefined. */
export function invalidRequestReason(value: unknown): string | undefined {
  return invalidRequestBodyReason(value) ?? invalidRequestHeadersReason(value);
}

const FAULTS: ReadonlySet<unknown> = new Set<Fault>(['no-handler', 'invalid-arguments', 'busy', 'closing', 'malformed']);

/**
 * Returns why `value` is not a reply, or undefined. An error reply is
 * checked to the type of every field docs/protocol.md gives it, so that
 * the error a caller builds from it (RemoteError, NoHandlerError, ...) has
 * fields of their documented types.
 */
export function invalidReplyReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'reply is not an object';
  const reply = value as { queryId?: unknown; result?: unknown; error?: unknown; instanceId?: unknown; fault?: unknown };
  if (typeof reply.queryId !== 'string') return 'reply.queryId is not a string';
  // a result is rarely undefined: the key is looked for only then
  if (reply.error === undefined) return reply.result !== undefined || 'result' in reply ? undefined : 'reply has neither result nor error';
  if (typeof reply.instanceId !== 'string') return `reply.instanceId is not a string; received ${describeValue(reply.instanceId)}`;
  const error = reply.error as { ok?: unknown; errorName?: unknown; message?: unknown; code?: unknown } | null;
  if (typeof error !== 'object' || error === null || Array.isArray(error) || Buffer.isBuffer(error)) return `reply.error is not a map { ok: false, errorName, message, code?, data? }; received ${describeValue(error)}`;
  if (error.ok !== false) return `reply.error.ok is not false; received ${describeValue(error.ok)}`;
  if (typeof error.errorName !== 'string') return `reply.error.errorName is not a string; received ${describeValue(error.errorName)}`;
  if (typeof error.message !== 'string') return `reply.error.message is not a string; received ${describeValue(error.message)}`;
  if (error.code !== undefined && typeof error.code !== 'string') return `reply.error.code is neither absent nor a string; received ${describeValue(error.code)}`;
  if (reply.fault !== undefined && !FAULTS.has(reply.fault)) return `reply.fault is not one of ${[...FAULTS].join(', ')}; received ${describeValue(reply.fault)}`;
  return undefined;
}

/** Turns anything thrown by a handler into the error half of a reply. */
export function describeThrown(thrown: unknown): ActionResult {
  if (thrown instanceof Error) {
    const carrier = thrown as Error & { code?: unknown; data?: unknown };
    const response: ActionResult = { ok: false, errorName: thrown.name || 'Error', message: thrown.message };
    if (typeof carrier.code === 'string') response.code = carrier.code;
    if (carrier.data !== undefined && unencodableReason(carrier.data, 'data') === undefined) response.data = carrier.data;
    return response;
  }
  const response: ActionResult = { ok: false, errorName: 'Error', message: typeof thrown === 'string' ? thrown : `a non-Error value was thrown: ${safeString(thrown)}` };
  if (thrown !== undefined && unencodableReason(thrown, 'thrown') === undefined) response.data = thrown;
  return response;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return typeof value;
  }
}
