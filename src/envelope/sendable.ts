/**
 * What may be sent: the check made on a payload, an argument list, a query or
 * a msgpack variable before it is encoded, so that nothing is silently
 * dropped (msgpack leaves functions out) and no encoder's raw error reaches
 * the caller (msgpackr throws `Unknown type: symbol`, or overflows the stack
 * on a value that refers to itself).
 */
import { describeValue } from '../../vars/describe';
import { MAX_DEPTH } from './msgpack';
import { isWellFormed } from './PlainEncoder';

/**
 * How deep arrays, maps and sets of a value may nest: a receiver refuses
 * frames nested deeper than {@link MAX_DEPTH}, and a frame wraps a value in
 * a few levels of its own (the frame, a batch, an argument list).
 */
export const MAX_VALUE_DEPTH = MAX_DEPTH - 8;

/*
 * Symbol-keyed properties are left out, as JSON.stringify leaves them out
 * (they are metadata by convention): refusing them meant listing every
 * object's symbols, which cost half of a MessagePack encode
 * (docs/benchmarks.md).
 */

/**
 * Returns why `value` cannot be sent faithfully, naming where in it
 * (`payload.user.notify is a function, which cannot be sent`), or undefined
 * when it can: a function or a symbol anywhere (in objects, arrays, Map keys
 * and values, Set items), a Promise, an Error, a WeakMap, WeakSet, WeakRef
 * or RegExp, a boxed primitive (`new Boolean(true)`), an Invalid Date, a
 * BigInt64Array, a Map key that a receiver refuses (anything but a string,
 * a number, a boolean, null or a bigint), an instance of a class that defines
 * getters (their values would be lost), nesting deeper than
 * {@link MAX_VALUE_DEPTH} (which is also what a value that refers to itself
 * does), or a property whose getter throws. `path` names the value itself (`payload`, `arguments`).
 */
export function unencodableReason(value: unknown, path: string): string | undefined {
  if (findUnencodable(value, undefined, 0) === undefined) return undefined;
  // found: walk again, this time noting where (the common case allocates nothing)
  const where: string[] = [];
  const kind = findUnencodable(value, where, 0) as string;
  where.reverse();
  // a value that refers to itself would repeat its path hundreds of times
  const shown = where.length > 8 ? `${where.slice(0, 6).join('')}...${where.slice(-1).join('')}` : where.join('');
  return `${path}${shown} ${kind}`;
}

/**
 * What is wrong with the first value that cannot be sent; with `where`, its path is pushed onto it, innermost first.
 * `fallback`: the value is inside a Map, a Set or an object that is not plain, which msgpackr writes (PlainEncoder
 * writes the rest): msgpackr writes a lone surrogate as bytes that are not UTF-8, which a receiver refuses.
 */
function findUnencodable(value: unknown, where: string[] | undefined, depth: number, fallback = false): string | undefined {
  switch (typeof value) {
    case 'string':
      return fallback && !isWellFormed.call(value) ? LONE_SURROGATE : undefined;
    case 'function':
    case 'symbol':
      return `is a ${typeof value}, which cannot be sent`;
    case 'object': {
      if (value === null) return undefined;
      // a plain object (what nearly every message is) is none of the kinds below: straight to its properties
      const plain = Object.getPrototypeOf(value) === Object.prototype;
      if (!plain) {
        if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'is an Invalid Date (its time is NaN), which no timestamp can carry' : undefined;
        if (ArrayBuffer.isView(value)) {
          return value instanceof BigInt64Array || value instanceof BigUint64Array ? `is a ${value.constructor.name}, which cannot be sent: send an array of its bigints` : undefined;
        }
      }
      if (depth >= MAX_VALUE_DEPTH) return `nests deeper than ${MAX_VALUE_DEPTH} levels (or refers to itself), which a receiver refuses`;
      if (plain) return findInProperties(value as Record<string, unknown>, where, depth, fallback);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const kind = findUnencodable(value[i], where, depth + 1, fallback);
          if (kind !== undefined) {
            where?.push(`[${i}]`);
            return kind;
          }
        }
        return undefined;
      }
      if (value instanceof Map || value instanceof Set) return findInCollection(value, where, depth);
      const prototype: unknown = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        const kind = instanceProblem(value, prototype as object);
        if (kind !== undefined) return kind;
        // msgpackr writes what a class instance's toJSON returns, not its properties: that is what must be sendable
        const toJSON = (value as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === 'function') {
          let json: unknown;
          try {
            json = toJSON.call(value) as unknown;
          } catch (error) {
            return `could not be read (its toJSON threw: ${error instanceof Error ? error.message : String(error)})`;
          }
          if (json !== value) {
            const problem = findUnencodable(json, where, depth + 1, true);
            if (problem !== undefined) where?.push('.toJSON()');
            return problem;
          }
        }
      }
      return findInProperties(value as Record<string, unknown>, where, depth, true);
    }
    default:
      return undefined;
  }
}

/** What msgpack cannot carry among the enumerable properties of an object, as {@link findUnencodable} tells it. */
function findInProperties(value: Record<string, unknown>, where: string[] | undefined, depth: number, fallback: boolean): string | undefined {
  let key: string | undefined;
  try {
    for (key in value) {
      const item = value[key];
      if (key === '__proto__' && hasOwnProperty.call(value, '__proto_')) {
        where?.push('.__proto__');
        return PROTO_PAIR;
      }
      if (fallback && !isWellFormed.call(key)) {
        where?.push(`[${JSON.stringify(key)}]`);
        return `is a key, ${LONE_SURROGATE.slice(3)}`;
      }
      // numbers, booleans, undefined, bigints and (outside msgpackr's part) strings hold nothing to find (most of a payload's values): no call
      if (typeof item !== 'object' && typeof item !== 'function' && typeof item !== 'symbol' && !(fallback && typeof item === 'string')) continue;
      const kind = findUnencodable(item, where, depth + 1, fallback);
      if (kind !== undefined) {
        where?.push(`.${key}`);
        return kind;
      }
    }
  } catch (error) {
    if (key !== undefined) where?.push(`.${key}`);
    return `could not be read (${error instanceof Error ? error.message : String(error)})`;
  }
  return undefined;
}

/** Why an object that is not plain (a class instance, a built-in) would arrive changed, or undefined when it arrives as its own enumerable properties. */
function instanceProblem(value: object, prototype: object): string | undefined {
  if (typeof (value as { then?: unknown }).then === 'function') return 'is a Promise (or thenable), which cannot be sent: await it first';
  if (value instanceof Error) return `is an Error (${value.name}), which cannot be sent: send its message or a plain object`;
  // MessagePack has no boxed primitives: new Boolean(true) would arrive as {} and new String('s') as { 0: 's' }
  for (const type of BOXED_TYPES) if (value instanceof type) return `is a boxed ${type.name} (new ${type.name}(...)), which cannot be sent: send the primitive (.valueOf())`;
  for (const type of UNSENDABLE_TYPES) if (value instanceof type) return `is a ${type.name}, which cannot be sent`;
  let getters = prototypesWithGetters.get(prototype);
  if (getters === undefined) {
    getters = hasGetters(prototype);
    prototypesWithGetters.set(prototype, getters);
  }
  const name = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
  return getters ? `is a ${typeof name === 'string' && name !== '' ? name : 'class instance'} with getters, whose values would not be sent: send a plain object` : undefined;
}

const hasOwnProperty = Object.prototype.hasOwnProperty;

const PROTO_PAIR = 'is a key beside a key "__proto_", which a receiver refuses (it renames __proto__ to __proto_, and the two would merge): rename one';

const LONE_SURROGATE =
  'is a string with a lone surrogate (half of a UTF-16 pair) inside a Map, a Set or a class instance, where it is written as bytes that are not UTF-8, which a receiver refuses: replace it (in a plain object it is sent as U+FFFD)';

/** Built-ins that MessagePack turns into something else (an empty object, an array). */
const UNSENDABLE_TYPES: ReadonlyArray<abstract new (...args: never[]) => object> = [WeakMap, WeakSet, WeakRef, RegExp];
/** Wrappers of primitives: msgpack writes their own properties (none, or a string's characters), not their value. */
const BOXED_TYPES: ReadonlyArray<abstract new (...args: never[]) => object> = [Boolean, Number, String, BigInt as unknown as abstract new () => object, Symbol as unknown as abstract new () => object];
const prototypesWithGetters = new WeakMap<object, boolean>();

/** Whether a prototype chain (below Object.prototype) defines an accessor. */
function hasGetters(prototype: object | null): boolean {
  for (let at = prototype; at !== null && at !== Object.prototype; at = Object.getPrototypeOf(at) as object | null) {
    for (const descriptor of Object.values(Object.getOwnPropertyDescriptors(at))) if (descriptor.get !== undefined) return true;
  }
  return false;
}

function findInCollection(collection: Map<unknown, unknown> | Set<unknown>, where: string[] | undefined, depth: number): string | undefined {
  let index = 0;
  let textKeys = false;
  for (const [key, item] of collection.entries()) {
    if (collection instanceof Map) {
      if (typeof key !== 'string') textKeys = true;
      if (!isMapKey(key)) return `has a Map key that is ${describeValue(key)}, which a receiver refuses (and the whole frame with it): use a string, a number, a boolean, null or a bigint`;
      if (key === '__proto__' && collection.has('__proto_')) {
        where?.push('.get("__proto__")');
        return PROTO_PAIR;
      }
    }
    const kind = findUnencodable(key, where, depth + 1, true) ?? (collection instanceof Map ? findUnencodable(item, where, depth + 1, true) : undefined);
    if (kind !== undefined) {
      where?.push(collection instanceof Map ? `.get(${describeValue(key)})` : ` (Set item ${index})`);
      return kind;
    }
    index += 1;
  }
  return textKeys ? mergedMapKey(collection as Map<unknown, unknown>) : undefined;
}

/**
 * A receiver reads a map's keys as text: two keys of a Map with the same text (1 and '1', 5n and 5, null and 'null')
 * would arrive as one, a value lost. Only Maps with a key that is not a string are looked at.
 */
function mergedMapKey(map: Map<unknown, unknown>): string | undefined {
  const texts = new Map<string, unknown>();
  for (const key of map.keys()) {
    const text = String(key);
    if (texts.has(text)) return `has the Map keys ${describeValue(texts.get(text))} and ${describeValue(key)}, which a receiver reads as one key ${JSON.stringify(text)} (a value would be lost)`;
    texts.set(text, key);
  }
  return undefined;
}

/** Whether a receiver reads `key` as a map key (as text): a string, a number, a boolean, null or a bigint (docs/protocol.md, Types). */
function isMapKey(key: unknown): boolean {
  switch (typeof key) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return true;
    default:
      // functions and symbols are named as such by findUnencodable
      return key === null || typeof key === 'function' || typeof key === 'symbol';
  }
}

