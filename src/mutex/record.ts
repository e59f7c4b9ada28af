import { MAX_TIMER_MS } from '../envelope/validate';
/**
 * The mutex record: what a lock's value holds, how it is written
 * and read, and the checks of ids, node ids and timeouts.
 */
import { ValidationError } from '../errors/ValidationError';
import { describeValue } from '../../vars/describe';

/**
 * The state of one mutex, as OpenTera's shared mutex records it (`mutexId`, `taken`,
 * `takenAt`, `takenBy`, `timeout`), plus the fencing token and the time left.
 * The fields other than `mutexId` and `taken` are null when the mutex is free.
 */
export interface MutexRecord {
  /** Name of the mutex, shared between services. */
  mutexId: string;
  /** True while a node holds it. */
  taken: boolean;
  /** When the holder took it: ISO 8601, by the holder's clock. */
  takenAt: string | null;
  /** The node id of the holder (the `nodeId` given to `P`, or the acquire option). */
  takenBy: string | null;
  /** The holder's timeout in ms, as asked for when it was taken (an extension moves the expiry, `expiresInMs`, without rewriting it). */
  timeout: number | null;
  /** Fencing token of the holder; null for a lock taken with `P` (which returns no token) or when free. */
  fence: number | null;
  /** Milliseconds until Redis releases it automatically (by Redis's clock). */
  expiresInMs: number | null;
}

/** Separator of the fields of a lock value; tokens never contain it. */
export const SEPARATOR = '|';

/** Builds the stored value: `<token>|<fence>|<takenAt>|<timeoutMs>|<nodeId>` (fence empty for `P`). */
export function encodeValue(token: string, fence: number | null, takenAt: number, timeoutMs: number, nodeId: string): string {
  return `${token}|${fence === null ? '' : fence}|${takenAt}|${timeoutMs}|${nodeId}`;
}

/** A free mutex's record. */
export function freeRecord(mutexId: string): MutexRecord {
  return { mutexId, taken: false, takenAt: null, takenBy: null, timeout: null, fence: null, expiresInMs: null };
}

/** Reads a stored value back into a record; a value intracom did not write still reads as taken, with unknown details. */
export function decodeValue(mutexId: string, value: string, pttl: number): MutexRecord {
  const record: MutexRecord = { mutexId, taken: true, takenAt: null, takenBy: null, timeout: null, fence: null, expiresInMs: pttl >= 0 ? pttl : null };
  const cuts: number[] = [];
  for (let at = value.indexOf(SEPARATOR); at !== -1 && cuts.length < 4; at = value.indexOf(SEPARATOR, at + 1)) cuts.push(at);
  if (cuts.length < 4) return record;
  const fence = wholeNumber(value.slice(cuts[0] + 1, cuts[1]));
  const takenAt = wholeNumber(value.slice(cuts[1] + 1, cuts[2]));
  record.fence = fence;
  // a field another writer garbled reads as unknown (null), never as NaN or an Invalid Date
  record.takenAt = takenAt !== null && takenAt <= MAX_DATE_MS ? new Date(takenAt).toISOString() : null;
  record.timeout = wholeNumber(value.slice(cuts[2] + 1, cuts[3]));
  record.takenBy = value.slice(cuts[3] + 1);
  return record;
}

/** The latest time a Date can hold, ms since the epoch. */
const MAX_DATE_MS = 8.64e15;

/** A field of decimal digits as a safe integer; null for anything else (an empty fence, a garbled field). */
function wholeNumber(field: string): number | null {
  if (!/^\d{1,16}$/.test(field)) return null;
  const number = Number(field);
  return Number.isSafeInteger(number) ? number : null;
}

const MUTEX_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$/;
// eslint-disable-next-line no-control-regex
const NODE_ID = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** Largest timeout: Node's timers (used for expiry notice and refresh) cannot wait longer. */
export const MAX_TIMEOUT_MS = MAX_TIMER_MS;

/** Renders a received value for an error message (the one helper every layer uses). */
export const describe = describeValue;

/** Refuses anything but 1-200 of `[A-Za-z0-9_.:-]`, not starting with `.`, `:` or `-`. */
export function assertMutexId(mutexId: unknown, field = 'mutexId'): asserts mutexId is string {
  if (typeof mutexId !== 'string' || !MUTEX_ID.test(mutexId)) {
    throw new ValidationError(`${field} must be 1-200 characters of letters, digits, "_", ".", ":" and "-" (not starting with ".", ":" or "-"); received ${describe(mutexId)}`);
  }
}

/** Refuses anything but a string of 1-200 characters without control characters. */
export function assertNodeId(nodeId: unknown, field = 'nodeId'): asserts nodeId is string {
  if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) {
    throw new ValidationError(`${field} must be a string of 1-200 characters without control characters; received ${describe(nodeId)}`);
  }
}

/** Refuses anything but an integer number of ms from 1 to {@link MAX_TIMEOUT_MS}. */
export function assertTimeout(timeoutMs: unknown, field = 'timeoutMs'): asserts timeoutMs is number {
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new ValidationError(`${field} must be a positive integer number of milliseconds (at most ${MAX_TIMEOUT_MS}); received ${describe(timeoutMs)}`);
  }
}
