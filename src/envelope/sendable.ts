/**
 * What may be sent: the check made on a payload, an argument list, a query or
 * a msgpack variable before it is encoded, so that nothing is silently
 * dropped (msgpack leaves functions out) and no encoder's raw error reaches
 * the caller (msgpackr throws `Unknown type: symbol`, or overflows the stack
 * on a value that refers to itself).
 */
import { describeValue } from '../../vars/describe';
import { MAX_DEPTH } from './msgpack';

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
 * or RegExp, an instance of a class that defines
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

/** What is wrong with the first value that cannot be sent; with `where`, its path is pushed onto it, innermost first. */
function findUnencodable(value: unknown, where: string[] | undefined, depth: number): string | undefined {
  switch (typeof value) {
    case 'function':
    case 'symbol':
      return `is a ${typeof value}, which cannot be sent`;
    case 'object': {
      if (value === null) return undefined;
      // a plain object (what nearly every message is) is none of the kinds below: straight to its properties
      const plain = Object.getPrototypeOf(value) === Object.prototype;
      if (!plain && (ArrayBuffer.isView(value) || value instanceof Date)) return undefined;
      if (depth >= MAX_VALUE_DEPTH) return `nests deeper than ${MAX_VALUE_DEPTH} levels (or refers to itself), which a receiver refuses`;
      if (plain) return findInProperties(value as Record<string, unknown>, where, depth);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const kind = findUnencodable(value[i], where, depth + 1);
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
      }
      return findInProperties(value as Record<string, unknown>, where, depth);
    }
    default:
      return undefined;
  }
}

/** What msgpack cannot carry among the enumerable properties of an object, as {@link findUnencodable} tells it. */
function findInProperties(value: Record<string, unknown>, where: string[] | undefined, depth: number): string | undefined {
  let key: string | undefined;
  try {
    for (key in value) {
      const item = value[key];
      // strings, numbers, booleans, undefined and bigints hold nothing to find (most of a payload's values): no call
      if (typeof item !== 'object' && typeof item !== 'function' && typeof item !== 'symbol') continue;
      const kind = findUnencodable(item, where, depth + 1);
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
  for (const type of UNSENDABLE_TYPES) if (value instanceof type) return `is a ${type.name}, which cannot be sent`;
  let getters = prototypesWithGetters.get(prototype);
  if (getters === undefined) {
    getters = hasGetters(prototype);
    prototypesWithGetters.set(prototype, getters);
  }
  const name = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
  return getters ? `is a ${typeof name === 'string' && name !== '' ? name : 'class instance'} with getters, whose values would not be sent: send a plain object` : undefined;
}

/** Built-ins that MessagePack turns into something else (an empty object, an array). */
const UNSENDABLE_TYPES: ReadonlyArray<abstract new (...args: never[]) => object> = [WeakMap, WeakSet, WeakRef, RegExp];
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
  for (const [key, item] of collection.entries()) {
    const kind = findUnencodable(key, where, depth + 1) ?? (collection instanceof Map ? findUnencodable(item, where, depth + 1) : undefined);
    if (kind !== undefined) {
      where?.push(collection instanceof Map ? `.get(${describeValue(key)})` : ` (Set item ${index})`);
      return kind;
    }
    index += 1;
  }
  return undefined;
}
