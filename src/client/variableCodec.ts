import type { VarDefinition, VarType } from '../../vars/types';
import type { Codec } from '../envelope/codec';
import { ValidationError } from '../errors/ValidationError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { describeValue } from '../../vars/describe';
import { unencodableReason } from '../envelope/sendable';
import { hasLoneSurrogate } from '../route/glob';

function refuse(variable: VarDefinition, expected: string, value: unknown): never {
  throw new ValidationError(`variable "${variable.name}" expects ${expected}; received ${describeVariableValue(variable, value)}`);
}

/** How a value is shown in errors and logs: never the value of a secret variable, only its type. */
export function describeVariableValue(variable: VarDefinition, value: unknown): string {
  if (variable.secret) return `a ${value === null ? 'null' : Buffer.isBuffer(value) ? 'Buffer' : Array.isArray(value) ? 'array' : typeof value} (value of a secret variable not shown)`;
  return describeValue(value);
}

function isJsonValue(value: unknown, depth = 0): boolean {
  if (depth > 100) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((item) => isJsonValue(item, depth + 1));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.values(value as object).every((item) => isJsonValue(item, depth + 1));
  }
  return false;
}

const SURROGATE_WHY = 'a lone surrogate would reach Redis and watchers changed, as U+FFFD';

/**
 * Where in a JSON or msgpack value a string (or a key) holds a lone
 * surrogate, as `value.items[2]`, or undefined when none does. Runs after the
 * type check, which has refused cycles and values nested too deep.
 */
function loneSurrogateAt(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return hasLoneSurrogate(value) ? path : undefined;
  if (typeof value !== 'object' || value === null || depth > 600 || Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return undefined;
  if (Array.isArray(value) || value instanceof Set) {
    let index = 0;
    for (const item of value) {
      const found = loneSurrogateAt(item, `${path}[${index++}]`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  for (const [key, item] of entries) {
    const name = typeof key === 'string' ? key : String(key);
    if (typeof key === 'string' && hasLoneSurrogate(key)) return `a key of ${path}`;
    const found = loneSurrogateAt(item, `${path}.${name}`, depth + 1) ?? (value instanceof Map ? loneSurrogateAt(key, `a key of ${path}`, depth + 1) : undefined);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Undefined when every string of a JSON or msgpack value is well-formed Unicode; else what is expected, naming where. */
function wellFormedText(value: unknown): string | undefined {
  const at = loneSurrogateAt(value, 'value');
  return at === undefined ? undefined : `well-formed Unicode in every string (${at} has a lone surrogate: ${SURROGATE_WHY})`;
}

/** What a value of each type must be, or undefined for a value that fits. */
function expectedOf(type: VarType, value: unknown): string | undefined {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') return 'a string';
      return hasLoneSurrogate(value) ? `well-formed Unicode text (${SURROGATE_WHY})` : undefined;
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? undefined : 'a safe integer';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'a finite number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'a boolean';
    case 'buffer':
      return Buffer.isBuffer(value) ? undefined : 'a Buffer';
    case 'json':
      return isJsonValue(value) ? wellFormedText(value) : 'a JSON value (plain objects, arrays, strings, finite numbers, booleans, null)';
    case 'msgpack': {
      if (value === undefined) return 'a msgpack-able value';
      const unsendable = unencodableReason(value, 'value');
      return unsendable === undefined ? wellFormedText(value) : `a msgpack-able value (${unsendable})`;
    }
  }
}

/**
 * A received value as the variable's type holds it: a foreign encoder may
 * write any integer as MessagePack uint64/int64 (Python writes 1700000000000
 * as 0xcf, Go and Java write even 3 as 0xd3), which decodes to a bigint; for
 * an `integer` or `number` variable a bigint within the safe-integer range is
 * the number it denotes. Anything else is returned unchanged.
 */
export function receivedVariableValue(variable: VarDefinition, value: unknown): unknown {
  if (typeof value !== 'bigint' || (variable.type !== 'integer' && variable.type !== 'number')) return value;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** True when `value` fits the variable's type (what a watcher may be given). */
export function fitsVariable(variable: VarDefinition, value: unknown): boolean {
  return expectedOf(variable.type, value) === undefined;
}

/** Checks a value against its variable's type and returns what Redis stores. Throws ValidationError naming the variable. */
export function encodeVariable(variable: VarDefinition, value: unknown, codec: Codec): Buffer | string {
  const expected = expectedOf(variable.type, value);
  if (expected !== undefined) refuse(variable, expected, value);
  switch (variable.type) {
    case 'string':
    case 'buffer':
      return value as string | Buffer;
    case 'integer':
    case 'number':
      return String(value);
    case 'boolean':
      return value ? '1' : '0';
    case 'json':
      return JSON.stringify(value);
    case 'msgpack':
      try {
        return codec.encode(value);
      } catch (error) {
        // a custom codec's refusal, as the checks above would have put it
        const reason = variable.secret ? '' : `: ${error instanceof Error ? error.message : String(error)}`;
        throw new ValidationError(`variable "${variable.name}" expects a value its codec can encode; the codec refused ${describeVariableValue(variable, value)}${reason}`, { cause: error });
      }
  }
}

/** Turns stored bytes back into the variable's value; throws MalformedMessageError when they do not fit its type. */
export function decodeVariable(variable: VarDefinition, key: string, bytes: Buffer, codec: Codec): unknown {
  const bad = (reason: string): never => {
    throw new MalformedMessageError(key, `stored value of variable "${variable.name}" ${variable.secret ? reason.replace(/: .*$/s, '') : reason}`);
  };
  switch (variable.type) {
    case 'string':
      return bytes.toString('utf8');
    case 'integer': {
      const text = bytes.toString();
      if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) bad(`is not an integer: ${JSON.stringify(text.slice(0, 40))}`);
      return Number(text);
    }
    case 'number': {
      const number = Number(bytes.toString());
      if (!Number.isFinite(number)) bad('is not a number');
      return number;
    }
    case 'boolean': {
      const text = bytes.toString();
      if (text !== '1' && text !== '0') bad(`is not 1 or 0: ${JSON.stringify(text.slice(0, 40))}`);
      return text === '1';
    }
    case 'buffer':
      return bytes;
    case 'json':
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch {
        return bad('is not JSON');
      }
    case 'msgpack':
      try {
        return codec.decode(bytes);
      } catch {
        return bad('is not msgpack');
      }
  }
}
