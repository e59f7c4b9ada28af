import type { VarDefinition, VarType } from '../../vars/types';
import type { Codec } from '../envelope/codec';
import { ValidationError } from '../errors/ValidationError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { describeValue } from '../../vars/describe';

function refuse(variable: VarDefinition, expected: string, value: unknown): never {
  throw new ValidationError(`variable "${variable.name}" expects ${expected}; received ${describeValue(value)}`);
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

/** Checks a value against its variable's type and returns what Redis stores. Throws ValidationError naming the variable. */
export function encodeVariable(variable: VarDefinition, value: unknown, codec: Codec): Buffer | string {
  const type: VarType = variable.type;
  switch (type) {
    case 'string':
      if (typeof value !== 'string') refuse(variable, 'a string', value);
      return value;
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) refuse(variable, 'a safe integer', value);
      return String(value);
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) refuse(variable, 'a finite number', value);
      return String(value);
    case 'boolean':
      if (typeof value !== 'boolean') refuse(variable, 'a boolean', value);
      return value ? '1' : '0';
    case 'buffer':
      if (!Buffer.isBuffer(value)) refuse(variable, 'a Buffer', value);
      return value;
    case 'json':
      if (!isJsonValue(value)) refuse(variable, 'a JSON value (plain objects, arrays, strings, finite numbers, booleans, null)', value);
      return JSON.stringify(value);
    case 'msgpack':
      if (value === undefined || typeof value === 'function' || typeof value === 'symbol') refuse(variable, 'a msgpack-able value', value);
      return codec.encode(value);
  }
}

/** Turns stored bytes back into the variable's value; throws MalformedMessageError when they do not fit its type. */
export function decodeVariable(variable: VarDefinition, key: string, bytes: Buffer, codec: Codec): unknown {
  const bad = (reason: string): never => {
    throw new MalformedMessageError(key, `stored value of variable "${variable.name}" ${reason}`);
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
