/**
 * Decoding trusts nothing: every field of a query or an event is checked for
 * presence and type, and enum values outside the known set are refused. The
 * functions return a reason string for a bad message (callers count, log and
 * skip it) so that no exception can escape into a subscriber loop.
 */
import { nameProblem } from '../../vars/define';
import { QueryRoute, QueryState, QueryType, type EventMessage, type Query } from './types';

const QUERY_TYPES = new Set<string>(Object.values(QueryType));
const QUERY_STATES = new Set<string>(Object.values(QueryState));
const QUERY_ROUTES = new Set<string>(Object.values(QueryRoute));

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** The longest wait a Node.js timer takes (2^31 - 1 ms): a longer one fires after 1 ms, again and again. */
export const MAX_TIMER_MS = 2_147_483_647;

/** The longest `queryId` a receiver accepts, in characters (docs/protocol.md). */
export const MAX_QUERY_ID_LENGTH = 200;

/** Whether `value` is a `queryId` every receiver accepts: a non-empty string of at most {@link MAX_QUERY_ID_LENGTH} characters. */
export function isQueryId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_QUERY_ID_LENGTH;
}

/**
 * The number a foreign writer meant: any MessagePack integer or float. A
 * 64-bit integer beyond 2^53 decodes as a bigint; in an envelope's numeric
 * field it becomes the nearest number (nanosecond clocks exceed 2^53).
 */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/**
 * Returns why `value` is neither an event `{ headers, payload }` nor a batch
 * of events sharing headers `{ headers, payloads: [...] }` (not both), or
 * undefined. Whether `headers.name` is the topic of the channel it came on is
 * the receiver's check (the channel is not known here).
 */
export function invalidEventReason(value: unknown): string | undefined {
  if (!isPlainObject(value)) return 'event is not an object';
  const headers = value.headers;
  if (!isPlainObject(headers)) return 'event.headers is not an object';
  if (typeof headers.name !== 'string') return 'event.headers.name is not a string';
  if (typeof headers.createdAt !== 'string') return 'event.headers.createdAt is not a string';
  if (typeof headers.serviceName !== 'string') return 'event.headers.serviceName is not a string';
  if ('payloads' in value) {
    // one of the two would be dropped without a word: which one the sender meant is not for the receiver to guess
    if ('payload' in value) return 'event has both payload and payloads';
    return Array.isArray(value.payloads) ? undefined : 'event.payloads is not an array';
  }
  if (!('payload' in value)) return 'event.payload is missing';
  return undefined;
}

/** Narrows `value` to an event when it is one. */
export function isEventMessage(value: unknown): value is EventMessage {
  return invalidEventReason(value) === undefined;
}

/**
 * Returns why `value` is not a query envelope, or undefined when it is one.
 * Numeric fields written as 64-bit integers beyond 2^53 (bigints once
 * decoded) are replaced by numbers in place.
 */
export function invalidQueryReason(value: unknown): string | undefined {
  if (!isPlainObject(value)) return 'query is not an object';
  const q = value;
  if (!isQueryId(q.queryId)) return `queryId must be a non-empty string of at most ${MAX_QUERY_ID_LENGTH} characters`;
  // both are service keys (docs/protocol.md's name rules), whatever a handler or a log does with them
  const source = nameProblem('serviceNameSource', q.serviceNameSource);
  if (source !== undefined) return source;
  const dest = nameProblem('serviceNameDest', q.serviceNameDest);
  if (dest !== undefined) return dest;
  if (typeof q.route !== 'string' || !QUERY_ROUTES.has(q.route)) return `route ${JSON.stringify(q.route)} is not one of ${[...QUERY_ROUTES].join(', ')}`;
  if (typeof q.type !== 'string' || !QUERY_TYPES.has(q.type)) return `type ${JSON.stringify(q.type)} is not one of ${[...QUERY_TYPES].join(', ')}`;
  if (typeof q.action === 'bigint') q.action = asNumber(q.action);
  if (typeof q.action !== 'string' && !isFiniteNumber(q.action)) return 'action is neither a string nor a number';
  if (typeof q.state !== 'string' || !QUERY_STATES.has(q.state)) return `state ${JSON.stringify(q.state)} is not one of ${[...QUERY_STATES].join(', ')}`;
  // every field is required (protocol.md): one that holds nothing is null, never left out
  for (const field of ['query', 'response', 'result'] as const) if (!(field in q)) return `${field} is missing (every field of the envelope is required; null when it holds nothing)`;
  if (q.response !== null) {
    if (!isPlainObject(q.response) || typeof q.response.ok !== 'boolean') return 'response is neither null nor an ActionResult { ok: boolean, ... }';
  }
  for (const field of ['query_ts', 'response_ts', 'query_ms', 'timeout_ms', 'processAttempts'] as const) {
    const number = asNumber(q[field]);
    if (number === undefined || number < 0) return `${field} is not a non-negative number`;
    q[field] = number;
  }
  if ('timout_ms' in q) return 'timout_ms (a misspelling of timeout_ms in OpenTera\'s envelope) is not accepted: send timeout_ms';
  return undefined;
}

/** Narrows `value` to a query envelope when it is one. */
export function isQuery(value: unknown): value is Query {
  return invalidQueryReason(value) === undefined;
}
