import type { VarDefinition, VarType } from '../../vars/types';
import type { Codec } from '../envelope/codec';
import { ValidationError } from '../errors/ValidationError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { describeValue } from '../../vars/describe';
import { unencodableReason } from '../envelope/sendable';

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

/** What a value of each type must be, or undefined for a value that fits. */
function expectedOf(type: VarType, value: unknown): string | undefined {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : 'a string';
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value) ? undefined : 'a safe integer';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? undefined : 'a finite number';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'a boolean';
    case 'buffer':
      return Buffer.isBuffer(value) ? undefined : 'a Buffer';
    case 'json':
      return isJsonValue(value) ? undefined : 'a JSON value (plain objects, arrays, strings, finite numbers, booleans, null)';
    case 'msgpack': {
      if (value === undefined) return 'a msgpack-able value';
      const unsendable = unencodableReason(value, 'value');
      return unsendable === undefined ? undefined : `a msgpack-able value (${unsendable})`;
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
