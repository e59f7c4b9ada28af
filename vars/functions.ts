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
import { refuseUnknownOptions, type OptionNames } from './options';

/**
 * The Standard Schema interface (https://standardschema.dev), version 1,
 * inlined as the specification recommends, so that intracom needs no package
 * at run time to accept validators from zod, valibot, arktype and the others
 * that implement it.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace StandardSchemaV1 {
  /** The properties every Standard Schema carries. */
  export interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  /** The outcome of `validate`. */
  export type Result<Output> = SuccessResult<Output> | FailureResult;
  export interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  export interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  export interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  export interface PathSegment {
    readonly key: PropertyKey;
  }
  export interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  export type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
  export type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
}

/**
 * A schema of intracom's small built-in set ({@link schema}). It is a
 * Standard Schema too, so the two kinds mix freely in one declaration.
 */
export interface Schema<T> extends StandardSchemaV1<T, T> {
  /** Human-readable type, such as `number`, `string[]` or `{ id: string }`. */
  readonly type: string;
  /** Returns why `value` does not fit (naming `path`), or undefined when it does. */
  check(value: unknown, path: string): string | undefined;
}

/** What a declaration accepts for an argument or a result: a built-in schema or any Standard Schema. */
export type AnySchema = StandardSchemaV1<any, any>;

/** The TypeScript type a schema produces: its output type (a Standard Schema that transforms hands on the transformed value). */
export type Infer<S> = S extends StandardSchemaV1<any, infer T> ? T : never;
/** The TypeScript type a schema accepts: its input type (what is passed before a transform). */
export type InferInput<S> = S extends StandardSchemaV1<infer T, any> ? T : never;

/** Which side of a schema to type: `input` (what is passed in) or `output` (what the schema produces). */
export type SchemaSide = 'input' | 'output';
/** The type of a schema on one side: {@link InferInput} or {@link Infer}. */
export type InferSide<S, Side extends SchemaSide> = Side extends 'input' ? InferInput<S> : Infer<S>;

/** The types of a tuple of schemas, on one side. */
export type InferTuple<A extends readonly unknown[], Side extends SchemaSide> = { -readonly [I in keyof A]: InferSide<A[I], Side> };

/**
 * The argument tuple of a list of schemas: trailing arguments whose schema
 * accepts undefined may be left out. `Side` `input` types what a caller
 * passes, `output` (the default) what a handler receives.
 */
export type InferArgs<A extends readonly unknown[], Side extends SchemaSide = 'output'> = A extends readonly [...infer Head, infer Last]
  ? undefined extends InferSide<Last, Side>
    ? [...InferArgs<Head, Side>, InferSide<Last, Side>?]
    : [...InferTuple<Head, Side>, InferSide<Last, Side>]
  : InferTuple<A, Side>;

function leaf<T>(type: string, test: (value: unknown) => boolean): Schema<T> {
  return builtin(type, (value: unknown, path: string) => (test(value) ? undefined : `${path} must be ${type}; received ${describeValue(value)}`));
}

/** A built-in schema from its check, with the Standard Schema face over it. */
function builtin<T>(type: string, check: (value: unknown, path: string) => string | undefined): Schema<T> {
  return Object.freeze({
    type,
    check,
    '~standard': Object.freeze({
      version: 1 as const,
      vendor: 'intracom',
      validate: (value: unknown): StandardSchemaV1.Result<T> => {
        const reason = check(value, 'the value');
        return reason === undefined ? { value: value as T } : { issues: [{ message: reason }] };
      },
    }),
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value) || value instanceof Date) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The type `schema.object(properties)` checks: properties whose schema accepts undefined are optional. */
export type InferObject<P extends Record<string, Schema<unknown>>> = {
  [K in keyof P as undefined extends Infer<P[K]> ? never : K]: Infer<P[K]>;
} & {
  [K in keyof P as undefined extends Infer<P[K]> ? K : never]?: Infer<P[K]>;
};

/**
 * Checks, when a schema is defined, what a built-in composite is given: a
 * built-in schema (its check runs synchronously inside the composite's), so
 * that a mistake fails here rather than in every call the schema checks.
 */
function nested<T>(constructor: string, what: string, value: Schema<T>): Schema<T> {
  const candidate: unknown = value;
  if (isBuiltin(candidate)) return value;
  const vendor = isSchema(candidate) ? candidate['~standard'].vendor : undefined;
  const instead = vendor === undefined ? '' : ` (a ${vendor} schema: declare the whole value with ${vendor} instead)`;
  throw new ValidationError(`schema.${constructor} needs, as ${what}, a schema made by \`schema\`; received ${describeValue(value)}${instead}`);
}

/**
 * A small built-in set of {@link Schema}s, for declarations that need no
 * validation library. For anything richer (unions, records, dates, refined
 * strings), pass a Standard Schema (zod, valibot, arktype) instead.
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
  /** `undefined` only (a function with no result). */
  void: (): Schema<undefined> => leaf('undefined', (v) => v === undefined || v === null),
  /** Exactly `value`. */
  literal: <const V extends string | number | boolean | null>(value: V): Schema<V> => {
    const fits = value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
    if (!fits) throw new ValidationError(`schema.literal needs a string, a finite number, a boolean or null; received ${describeValue(value)}`);
    return leaf(JSON.stringify(value), (v) => v === value);
  },
  /** An array whose items all fit `item`. */
  array: <T>(item: Schema<T>): Schema<T[]> =>
    builtin(`${nested('array', 'its item schema', item).type}[]`, (value, path) => {
      if (!Array.isArray(value)) return `${path} must be ${item.type}[]; received ${describeValue(value)}`;
      for (let i = 0; i < value.length; i++) {
        const reason = item.check(value[i], `${path}[${i}]`);
        if (reason !== undefined) return reason;
      }
      return undefined;
    }),
  /** A plain object with these properties (extra properties are refused; a property whose schema accepts undefined may be absent). */
  object: <P extends Record<string, Schema<unknown>>>(properties: P): Schema<InferObject<P>> => {
    if (!isPlainObject(properties)) throw new ValidationError(`schema.object needs an object of property schemas; received ${describeValue(properties)}`);
    const entries = Object.entries(properties);
    for (const [key, property] of entries) nested('object', `property ${JSON.stringify(key)}`, property);
    const type = `{ ${entries.map(([k, s]) => `${k}: ${s.type}`).join('; ')} }`;
    return builtin(type, (value, path) => {
      if (!isPlainObject(value)) return `${path} must be ${type}; received ${describeValue(value)}`;
      for (const [key, property] of entries) {
        const reason = property.check(value[key], `${path}.${key}`);
        if (reason !== undefined) return reason;
      }
      for (const key of Object.keys(value)) {
        if (!(key in properties)) return `${path} has the undeclared property ${JSON.stringify(key)}`;
      }
      return undefined;
    });
  },
  /** `inner` or undefined (an argument that may be left out at the end, or an optional property). */
  optional: <T>(inner: Schema<T>): Schema<T | undefined> =>
    builtin(`${nested('optional', 'its schema', inner).type} | undefined`, (value, path) => (value === undefined ? undefined : inner.check(value, path))),
  /** `inner` or null. */
  nullable: <T>(inner: Schema<T>): Schema<T | null> => builtin(`${nested('nullable', 'its schema', inner).type} | null`, (value, path) => (value === null ? undefined : inner.check(value, path))),
});

/** The declaration of one function: its arguments in order, its result, and what it does. */
export interface FunctionDefinition<A extends readonly AnySchema[] = readonly AnySchema[], R extends AnySchema = AnySchema> {
  /** The schemas of the positional arguments, in order: built-in ({@link schema}) or Standard Schemas (zod, valibot, ...). */
  readonly args: A;
  /** The schema of the result: built-in or a Standard Schema. */
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
/** The argument tuple a caller passes to function `K` of catalogue `D` (the schemas' input types). */
export type FunctionArgs<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? InferArgs<F[K]['args'], 'input'> : never) : never;
/** The result a caller receives from function `K` of catalogue `D` (the result schema's output type). */
export type FunctionResult<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? Infer<F[K]['result']> : never) : never;
/** The arguments the handler of function `K` of catalogue `D` receives (the schemas' output types, after any transform). */
export type HandlerArgs<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? InferArgs<F[K]['args'], 'output'> : never) : never;
/** What the handler of function `K` of catalogue `D` returns (the result schema's input type; the serving instance checks and transforms it). */
export type HandlerResult<D, K> = D extends FunctionCatalogue<infer F> ? (K extends keyof F ? InferInput<F[K]['result']> : never) : never;

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
    assertFunctionDefinition(`${scope} "${name}" function "${fn}"`, definition);
  }
  const topic = scope === 'service' ? serviceRpc(name) : moduleRpc(name);
  return Object.freeze({ scope, name, topic, functions: Object.freeze({ ...functions }) });
}

const DEFINITION_FIELDS: OptionNames<FunctionDefinition> = { args: true, result: true, description: true, idempotent: true };

/**
 * Throws a ValidationError naming `where` and the field unless `definition`
 * is a {@link FunctionDefinition}: an object with `args` (an array of
 * schemas), `result` (a schema), an optional string `description`, an
 * optional boolean `idempotent`, and no other field (a misspelt
 * `idempotant` would otherwise be ignored).
 */
export function assertFunctionDefinition(where: string, definition: unknown): asserts definition is FunctionDefinition {
  if (typeof definition !== 'object' || definition === null || Array.isArray(definition)) throw new ValidationError(`the definition of ${where} must be an object with args and result; received ${describeValue(definition)}`);
  refuseUnknownOptions(`definition (${where})`, definition, DEFINITION_FIELDS);
  const { args, result, description, idempotent } = definition as Partial<FunctionDefinition>;
  if (!Array.isArray(args) || !args.every(isSchema)) throw new ValidationError(`args of ${where} must be an array of schemas (intracom's or Standard Schemas); received ${describeValue(args)}`);
  if (!isSchema(result)) throw new ValidationError(`result of ${where} must be a schema (intracom's or a Standard Schema); received ${describeValue(result)}`);
  if (description !== undefined && typeof description !== 'string') throw new ValidationError(`description of ${where} must be a string; received ${describeValue(description)}`);
  if (idempotent !== undefined && typeof idempotent !== 'boolean') throw new ValidationError(`idempotent of ${where} must be a boolean; received ${describeValue(idempotent)}`);
}

function isSchema(value: unknown): value is AnySchema {
  const standard = (value as StandardSchemaV1 | undefined)?.['~standard'];
  return typeof standard === 'object' && standard !== null && standard.version === 1 && typeof standard.validate === 'function';
}

/** How a schema is shown by `describe`: a built-in schema's type, else `<vendor> schema`. */
export function schemaType(schema: AnySchema): string {
  return isBuiltin(schema) ? schema.type : `${schema['~standard'].vendor} schema`;
}

function isBuiltin(schema: unknown): schema is Schema<unknown> {
  const candidate = schema as Partial<Schema<unknown>> | null | undefined;
  return typeof candidate?.check === 'function' && typeof candidate.type === 'string' && isSchema(candidate) && candidate['~standard'].vendor === 'intracom';
}

/** The outcome of a check: the value to use (a Standard Schema may transform it), or why it was refused. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Checks one value; synchronous unless a Standard Schema validates asynchronously. */
export function checkValue(schema: AnySchema, value: unknown, path: string): Checked<unknown> | Promise<Checked<unknown>> {
  if (isBuiltin(schema)) {
    let reason: string | undefined;
    try {
      reason = schema.check(value, path);
    } catch (error) {
      reason = `${path} could not be checked: ${error instanceof Error ? error.message : String(error)}`;
    }
    return reason === undefined ? { ok: true, value } : { ok: false, reason };
  }
  let result: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
  try {
    result = schema['~standard'].validate(value);
  } catch (error) {
    return { ok: false, reason: `${path} could not be checked: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (result instanceof Promise) return result.then((settled) => standardOutcome(settled, path), (error: unknown) => ({ ok: false, reason: `${path} could not be checked: ${error instanceof Error ? error.message : String(error)}` }));
  return standardOutcome(result, path);
}

function standardOutcome(result: StandardSchemaV1.Result<unknown>, path: string): Checked<unknown> {
  if (result.issues === undefined) return { ok: true, value: result.value };
  const issue = result.issues[0];
  const at = issue?.path?.length ? `${path}.${issue.path.map((segment) => String(typeof segment === 'object' ? segment.key : segment)).join('.')}` : path;
  return { ok: false, reason: `${at}: ${issue?.message ?? 'refused'}` };
}

/**
 * Checks call arguments against a declaration: the count (missing trailing
 * arguments count as undefined and must be allowed by their schema; extra
 * ones are refused) and each value. Resolves with the arguments to hand to
 * the handler (Standard Schemas may transform them), or the reason.
 */
export function checkArguments(definition: FunctionDefinition, fn: string, args: readonly unknown[]): Checked<unknown[]> | Promise<Checked<unknown[]>> {
  const declared = definition.args;
  if (args.length > declared.length) return { ok: false, reason: `${fn} takes ${declared.length} argument(s); received ${args.length}` };
  let values: unknown[] | undefined;
  for (let i = 0; i < declared.length; i++) {
    const checked = checkValue(declared[i], args[i], `argument ${i + 1} of ${fn}`);
    if (checked instanceof Promise) return checkRemaining(definition, fn, args, i, checked, values);
    if (!checked.ok) return checked;
    if (checked.value !== args[i]) (values ??= [...args])[i] = checked.value;
  }
  return { ok: true, value: values ?? (args as unknown[]) };
}

async function checkRemaining(definition: FunctionDefinition, fn: string, args: readonly unknown[], from: number, pending: Promise<Checked<unknown>>, values: unknown[] | undefined): Promise<Checked<unknown[]>> {
  const out = values ?? [...args];
  let checked = await pending;
  for (let i = from; ; ) {
    if (!checked.ok) return checked;
    if (i < args.length || checked.value !== undefined) out[i] = checked.value;
    i += 1;
    if (i >= definition.args.length) break;
    checked = await checkValue(definition.args[i], args[i], `argument ${i + 1} of ${fn}`);
  }
  return { ok: true, value: out };
}
