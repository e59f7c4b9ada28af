/**
 * Declarations of the functions a service (or module) exposes over RPC, as
 * typed data: one declaration gives callers compile-time types for
 * `callService`/`call`, lets the serving instance check arguments and results
 * at run time, and answers `describe` (OpenTera could only document its
 * `rpc_api` by hand, and the documentation drifted from the code).
 *
 * @example
 * const Calc = defineFunctions({ service: 'calc' }, {
 *   add: { args: [schema.number(), schema.number()], result: schema.number(), idempotent: true, description: 'a + b' },
 * });
 * const sum = await rpc.callService(Calc, 'add', 1, 2); // sum: number
 */
import { ValidationError } from './ValidationError';
import { assertName } from './define';
import { describeValue } from './describe';
import { moduleRpc, serviceRpc } from './names';

/**
 * A run-time check of one value that also carries its TypeScript type `T`.
 * Build them with {@link schema}.
 */
export interface Schema<T> {
  /** Human-readable type, such as `number`, `string[]` or `{ id: string }`. */
  readonly type: string;
  /** Returns why `value` does not fit (naming `path`), or undefined when it does. */
  check(value: unknown, path: string): string | undefined;
  /** Phantom field carrying `T`; never set. */
  readonly __type?: T;
}

/** The TypeScript type a schema checks. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type InferTuple<A extends readonly unknown[]> = { -readonly [I in keyof A]: Infer<A[I]> };

/** The argument tuple of a list of schemas: trailing arguments whose schema accepts undefined may be left out. */
export type InferArgs<A extends readonly unknown[]> = A extends readonly [...infer Head, infer Last]
  ? undefined extends Infer<Last>
    ? [...InferArgs<Head>, Infer<Last>?]
    : [...InferTuple<Head>, Infer<Last>]
  : InferTuple<A>;

function leaf<T>(type: string, test: (value: unknown) => boolean): Schema<T> {
  return Object.freeze({
    type,
    check: (value: unknown, path: string) => (test(value) ? undefined : `${path} must be ${type}; received ${describeValue(value)}`),
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value) || value instanceof Date) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

type ObjectOf<P extends Record<string, Schema<unknown>>> = {
  [K in keyof P as undefined extends Infer<P[K]> ? never : K]: Infer<P[K]>;
} & {
  [K in keyof P as undefined extends Infer<P[K]> ? K : never]?: Infer<P[K]>;
};

/**
 * Builders of {@link Schema}s for function arguments and results. They cover
 * what msgpack carries: strings, numbers, bigint, booleans, null, Buffer,
 * Date, arrays, tuples and plain objects.
 */
export const schema = Object.freeze({
  /** Any value (no check). */
  any: (): Schema<unknown> => leaf('any', () => true),
  /** A string. */
  string: (): Schema<string> => leaf('string', (v) => typeof v === 'string'),
  /** A finite number. */
  number: (): Schema<number> => leaf('number', (v) => typeof v === 'number' && Number.isFinite(v)),
  /** A safe integer. */
  integer: (): Schema<number> => leaf('integer', (v) => typeof v === 'number' && Number.isSafeInteger(v)),
  /** A boolean. */
  boolean: (): Schema<boolean> => leaf('boolean', (v) => typeof v === 'boolean'),
  /** A bigint. */
  bigint: (): Schema<bigint> => leaf('bigint', (v) => typeof v === 'bigint'),
  /** Raw bytes. */
  buffer: (): Schema<Buffer> => leaf('Buffer', (v) => Buffer.isBuffer(v)),
  /** A Date. */
  date: (): Schema<Date> => leaf('Date', (v) => v instanceof Date && !Number.isNaN(v.getTime())),
  /** `null` only. */
  null: (): Schema<null> => leaf('null', (v) => v === null),
  /** `undefined` only (a function with no result). */
  void: (): Schema<undefined> => leaf('undefined', (v) => v === undefined || v === null),
  /** Exactly `value`. */
  literal: <const V extends string | number | boolean | null>(value: V): Schema<V> => leaf(JSON.stringify(value), (v) => v === value),
  /** An array whose items all fit `item`. */
  array: <T>(item: Schema<T>): Schema<T[]> =>
    Object.freeze({
      type: `${item.type}[]`,
      check(value: unknown, path: string) {
        if (!Array.isArray(value)) return `${path} must be ${item.type}[]; received ${describeValue(value)}`;
        for (let i = 0; i < value.length; i++) {
          const reason = item.check(value[i], `${path}[${i}]`);
          if (reason !== undefined) return reason;
        }
        return undefined;
      },
    }),
  /** A plain object with these properties (extra properties are refused; a property whose schema accepts undefined may be absent). */
  object: <P extends Record<string, Schema<unknown>>>(properties: P): Schema<ObjectOf<P>> => {
    const entries = Object.entries(properties);
    const type = `{ ${entries.map(([k, s]) => `${k}: ${s.type}`).join('; ')} }`;
    return Object.freeze({
      type,
      check(value: unknown, path: string) {
        if (!isPlainObject(value)) return `${path} must be ${type}; received ${describeValue(value)}`;
        for (const [key, property] of entries) {
          const reason = property.check(value[key], `${path}.${key}`);
          if (reason !== undefined) return reason;
        }
        for (const key of Object.keys(value)) {
          if (!(key in properties)) return `${path} has the undeclared property ${JSON.stringify(key)}`;
        }
        return undefined;
      },
    });
  },
  /** A plain object whose values all fit `value` (a map keyed by string). */
  record: <T>(value: Schema<T>): Schema<Record<string, T>> =>
    Object.freeze({
      type: `Record<string, ${value.type}>`,
      check(input: unknown, path: string) {
        if (!isPlainObject(input)) return `${path} must be Record<string, ${value.type}>; received ${describeValue(input)}`;
        for (const [key, item] of Object.entries(input)) {
          const reason = value.check(item, `${path}.${key}`);
          if (reason !== undefined) return reason;
        }
        return undefined;
      },
    }),
  /** `inner` or undefined (an argument that may be left out at the end, or an optional property). */
  optional: <T>(inner: Schema<T>): Schema<T | undefined> =>
    Object.freeze({
      type: `${inner.type} | undefined`,
      check: (value: unknown, path: string) => (value === undefined ? undefined : inner.check(value, path)),
    }),
  /** `inner` or null. */
  nullable: <T>(inner: Schema<T>): Schema<T | null> =>
    Object.freeze({
      type: `${inner.type} | null`,
      check: (value: unknown, path: string) => (value === null ? undefined : inner.check(value, path)),
    }),
  /** Any one of `options`. */
  union: <const S extends readonly Schema<unknown>[]>(...options: S): Schema<Infer<S[number]>> => {
    const type = options.map((o) => o.type).join(' | ');
    return Object.freeze({
      type,
      check(value: unknown, path: string) {
        for (const option of options) if (option.check(value, path) === undefined) return undefined;
        return `${path} must be ${type}; received ${describeValue(value)}`;
      },
    });
  },
});

/** The declaration of one function: its arguments in order, its result, and what it does. */
export interface FunctionDefinition<A extends readonly Schema<unknown>[] = readonly Schema<unknown>[], R extends Schema<unknown> = Schema<unknown>> {
  /** The schemas of the positional arguments, in order. */
  readonly args: A;
  /** The schema of the result. */
  readonly result: R;
  /** What the function does (for `describe` and the documentation). */
  readonly description?: string;
  /**
   * True when calling it twice has the effect of calling it once: a call
   * whose instance dies mid-call is then retried on another instance instead
   * of failing.
   * @default false
   */
  readonly idempotent?: boolean;
}

/** Whether a declaration is for a service (`service.<key>.rpc`) or a module (`module.<name>.rpc`). */
export type RpcScope = 'service' | 'module';

/** The functions one service or module exposes, declared with {@link defineFunctions}. */
export interface FunctionCatalogue<F extends Record<string, FunctionDefinition> = Record<string, FunctionDefinition>, S extends RpcScope = RpcScope> {
  /** `service` or `module`. */
  readonly scope: S;
  /** The service key or the module name. */
  readonly name: string;
  /** The namespace-free topic: `service.<key>.rpc` or `module.<name>.rpc`. */
  readonly topic: string;
  /** The functions, by name. */
  readonly functions: F;
}

/** The names of the functions of a catalogue. */
export type FunctionName<D> = D extends FunctionCatalogue<infer F> ? keyof F & string : never;
/** The argument tuple of function `K` of catalogue `D`. */
export type FunctionArgs<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? InferArgs<F[K]['args']> : never) : never;
/** The result type of function `K` of catalogue `D`. */
export type FunctionResult<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? Infer<F[K]['result']> : never) : never;

const RESERVED = /^\$/;

/**
 * Declares the functions of a service (`{ service: key }`) or a module
 * (`{ module: name }`). Throws a ValidationError naming the field when a
 * declaration is malformed. Function names starting with `$` are reserved.
 */
export function defineFunctions<const F extends Record<string, FunctionDefinition>, const T extends { service: string } | { module: string }>(
  target: T,
  functions: F,
): FunctionCatalogue<F, T extends { service: string } ? 'service' : 'module'> {
  const scope = (typeof target === 'object' && target !== null && 'service' in target ? 'service' : 'module') as T extends { service: string } ? 'service' : 'module';
  const name = (target as { service?: string; module?: string })[scope];
  assertName(scope === 'service' ? 'service' : 'module name', name);
  if (typeof functions !== 'object' || functions === null) throw new ValidationError(`functions of ${scope} "${name}" must be an object; received ${describeValue(functions)}`);
  for (const [fn, definition] of Object.entries(functions)) {
    if (fn.length === 0 || RESERVED.test(fn)) throw new ValidationError(`function name must be non-empty and not start with "$"; received ${JSON.stringify(fn)} in ${scope} "${name}"`);
    if (!Array.isArray(definition?.args) || !definition.args.every((s: Schema<unknown>) => typeof s?.check === 'function')) {
      throw new ValidationError(`args of ${scope} "${name}" function "${fn}" must be an array of schemas; received ${describeValue(definition?.args)}`);
    }
    if (typeof definition.result?.check !== 'function') throw new ValidationError(`result of ${scope} "${name}" function "${fn}" must be a schema; received ${describeValue(definition.result)}`);
  }
  const topic = scope === 'service' ? serviceRpc(name) : moduleRpc(name);
  return Object.freeze({ scope, name, topic, functions: Object.freeze({ ...functions }) });
}

/**
 * Checks call arguments against a declaration: the count (missing trailing
 * arguments count as undefined and must be allowed by their schema; extra
 * ones are refused) and each value. Returns the reason, or undefined.
 */
export function invalidArgumentsReason(definition: FunctionDefinition, fn: string, args: readonly unknown[]): string | undefined {
  const declared = definition.args;
  if (args.length > declared.length) return `${fn} takes ${declared.length} argument(s); received ${args.length}`;
  for (let i = 0; i < declared.length; i++) {
    const reason = declared[i].check(args[i], `argument ${i + 1} of ${fn}`);
    if (reason !== undefined) return reason;
  }
  return undefined;
}
