/**
 * What RPC puts on the wire, and the checks applied on receipt.
 *
 * - A request is a query envelope (seeds/000, type SYNC, `action` = function
 *   name, `query` = the argument array) plus `replyTo` (the caller's reply
 *   channel) and `sourceInstance`. It goes to the channel of one instance:
 *   `<topic>.<instanceId>`.
 * - A reply goes to `replyTo`: `{ queryId, instanceId, state, result, response }`.
 *   `fault` is set when intracom itself (not the handler) refused the call.
 * - A cancel (`{ cancel: queryId }`) and a probe (`{ probe: 1 }`) go to the
 *   same instance channel; a probe only asks Redis how many subscribers the
 *   channel has (0: the instance is gone).
 */
import { QueryState, type ActionResult, type Query } from '../envelope/types';
import { invalidQueryReason } from '../envelope/validate';

/** A request envelope. */
export interface RpcRequest extends Query {
  /** Channel the reply goes to. */
  replyTo: string;
  /** Instance id of the caller. */
  sourceInstance: string;
}

/**
 * Why intracom (not the handler) answered with an error: `no-handler` (no
 * such function), `invalid-arguments` (refused by the function's
 * declaration), `busy` (concurrency limit reached and queue full; the handler
 * never ran), `closing` (the instance is closing; the handler never ran),
 * `malformed` (the request envelope was malformed).
 */
export type Fault = 'no-handler' | 'invalid-arguments' | 'busy' | 'closing' | 'malformed';

/** A reply. */
export interface RpcReply {
  queryId: string;
  /** The instance that answered. */
  instanceId: string;
  state: QueryState.DONE | QueryState.ERROR;
  result: unknown;
  response: ActionResult | null;
  /** Set when intracom refused the call before or instead of running the handler. */
  fault?: Fault;
}

/** Tells an instance that the caller gave up on a call (its handler's signal fires). */
export interface RpcCancel {
  cancel: string;
}

/** Returns why `value` is not a request, or undefined. */
export function invalidRequestReason(value: unknown, replyPrefix: string): string | undefined {
  const reason = invalidQueryReason(value);
  if (reason !== undefined) return reason;
  const request = value as RpcRequest;
  if (typeof request.action !== 'string') return 'action (the function name) is not a string';
  if (!Array.isArray(request.query)) return 'query (the argument list) is not an array';
  if (typeof request.replyTo !== 'string' || !request.replyTo.startsWith(replyPrefix)) return `replyTo is not an RPC reply channel (${replyPrefix}...)`;
  if (typeof request.sourceInstance !== 'string') return 'sourceInstance is not a string';
  return undefined;
}

/** Returns why `value` is not a reply, or undefined. */
export function invalidReplyReason(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'reply is not an object';
  const reply = value as Partial<RpcReply>;
  if (typeof reply.queryId !== 'string') return 'reply.queryId is not a string';
  if (typeof reply.instanceId !== 'string') return 'reply.instanceId is not a string';
  if (reply.state !== QueryState.DONE && reply.state !== QueryState.ERROR) return `reply.state ${JSON.stringify(reply.state)} is neither DONE nor ERROR`;
  if (reply.state === QueryState.ERROR && (typeof reply.response !== 'object' || reply.response === null || typeof reply.response.ok !== 'boolean')) {
    return 'an ERROR reply has no response { ok, errorName, message }';
  }
  return undefined;
}

/**
 * Returns a description of the first value msgpack would not carry faithfully
 * (a function or a symbol, which it would drop or refuse), or undefined.
 * Checked before sending so that nothing is silently dropped.
 */
export function unencodableReason(value: unknown, path: string, depth = 0): string | undefined {
  switch (typeof value) {
    case 'function':
      return `${path} is a function, which cannot be sent`;
    case 'symbol':
      return `${path} is a symbol, which cannot be sent`;
    case 'object': {
      if (value === null || depth > 32) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const reason = unencodableReason(value[i], `${path}[${i}]`, depth + 1);
          if (reason !== undefined) return reason;
        }
        return undefined;
      }
      if (ArrayBuffer.isView(value) || value instanceof Date) return undefined;
      for (const key in value) {
        const reason = unencodableReason((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
        if (reason !== undefined) return reason;
      }
      return undefined;
    }
    default:
      return undefined;
  }
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
