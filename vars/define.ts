import { describeValue } from './describe';
import { refuseUnknownOptions, type OptionNames } from './options';
import { ValidationError } from './ValidationError';
import type { Catalogue, TopicDefinition, VarDefinition, VarType } from './types';

const SEGMENT = '[A-Za-z0-9_][A-Za-z0-9_-]*';
const SEGMENT_PATTERN = new RegExp(`^${SEGMENT}$`);
const NAME_PATTERN = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})*$`);
const MAX_NAME_LENGTH = 200;
const VAR_TYPES: readonly VarType[] = ['string', 'integer', 'number', 'boolean', 'buffer', 'json', 'msgpack'];

/**
 * Words an instance id may not be: a channel `<rpc topic>.<instanceId>` must
 * never equal an events or messages topic (`service.a.rpc.events` is the events
 * topic of service `a.rpc`), and a BROADCAST instance's completion records must
 * never share the key of the worker group's (`done:workers:<bucket>`).
 */
export const RESERVED_INSTANCE_IDS: readonly string[] = Object.freeze(['events', 'messages', 'rpc', 'workers']);

/**
 * Why `name` is not a valid dotted name (a service key, module name, variable
 * owner or websocket uuid), or undefined when it is: 1-200 characters, one or
 * more segments of letters, digits, `_` and `-` (not starting with `-`; none
 * of them `from`) joined by single dots, such as OpenTera's `TeraServer.UserManagerModule`.
 */
export function nameProblem(field: string, name: unknown): string | undefined {
  if (typeof name === 'string' && name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name) && !name.split('.').includes(RESERVED_SEGMENT)) return undefined;
  return `${field} must be 1-${MAX_NAME_LENGTH} characters: segments of letters, digits, "_" and "-" (not starting with "-"; none of them "${RESERVED_SEGMENT}") joined by single dots; received ${describeValue(name)}`;
}

/**
 * The segment no dotted name may have: RPC channels end `.from.<service>`
 * (`<topic>.<instanceId>.from.<caller>`, `intracom.rpc.reply.<service>.<instanceId>.from.<callee>`),
 * and a name with a `from` segment would make two of them one channel.
 */
const RESERVED_SEGMENT = 'from';

/**
 * Why `name` is not a valid single segment (a variable name), or undefined
 * when it is: 1-200 letters, digits, `_` and `-`, not starting with `-`, no dot.
 * The last part of a channel such as `intracom.var.<owner>.<name>` has no dot,
 * so owner and name can always be told apart.
 */
export function segmentProblem(field: string, name: unknown): string | undefined {
  if (typeof name === 'string' && name.length <= MAX_NAME_LENGTH && SEGMENT_PATTERN.test(name)) return undefined;
  return `${field} must be 1-${MAX_NAME_LENGTH} characters of letters, digits, "_" and "-" (not starting with "-"; no dot); received ${describeValue(name)}`;
}

/** Why `id` is not a valid instance id, or undefined when it is: one segment (see {@link segmentProblem}) and none of {@link RESERVED_INSTANCE_IDS}. */
export function instanceIdProblem(field: string, id: unknown): string | undefined {
  const problem = segmentProblem(field, id);
  if (problem !== undefined) return problem;
  return RESERVED_INSTANCE_IDS.includes(id as string) ? `${field} must not be one of ${RESERVED_INSTANCE_IDS.join(', ')}; received ${describeValue(id)}` : undefined;
}

/**
 * Throws a ValidationError naming the field and the value received unless
 * `name` is a valid dotted name ({@link nameProblem}).
 */
export function assertName(field: string, name: unknown): asserts name is string {
  const problem = nameProblem(field, name);
  if (problem !== undefined) throw new ValidationError(problem);
}

/** Throws a ValidationError unless `name` is one segment ({@link segmentProblem}). */
export function assertSegment(field: string, name: unknown): asserts name is string {
  const problem = segmentProblem(field, name);
  if (problem !== undefined) throw new ValidationError(problem);
}

const VAR_FIELDS: OptionNames<VarDefinition> = { name: true, type: true, description: true, owner: true, ttlMs: true, keyed: true, keyDescription: true, secret: true, confidential: true, internal: 'internal' };
const TOPIC_FIELDS: OptionNames<TopicDefinition> = { name: true, payload: true, publishers: true, subscribers: true, description: true };

/** Declares one variable; the returned object is what `RedisClient.get`/`set` take. */
export function defineVar<const T extends VarType, const K extends boolean = false>(
  definition: Omit<VarDefinition<T, K>, 'keyed'> & { keyed?: K },
): VarDefinition<T, K> {
  if (typeof definition !== 'object' || definition === null) throw new ValidationError(`defineVar needs an object; received ${describeValue(definition)}`);
  assertSegment('variable name', definition.name);
  // a misspelt field (`secert`, `ttlMS`) would be ignored: the variable not secret, its value out on the channel
  refuseUnknownOptions(`defineVar("${definition.name}")`, definition, VAR_FIELDS);
  // Internal entries document key families whose owner is a placeholder such as `<service>`.
  if (!definition.internal) assertName(`owner of variable "${definition.name}"`, definition.owner);
  if (!VAR_TYPES.includes(definition.type)) {
    throw new ValidationError(`type of variable "${definition.name}" must be one of ${VAR_TYPES.join(', ')}; received ${describeValue(definition.type)}`);
  }
  if (definition.ttlMs !== undefined && (!Number.isSafeInteger(definition.ttlMs) || definition.ttlMs <= 0)) {
    throw new ValidationError(`ttlMs of variable "${definition.name}" must be a positive integer; received ${describeValue(definition.ttlMs)}`);
  }
  if (definition.keyed !== undefined && typeof definition.keyed !== 'boolean') {
    throw new ValidationError(`keyed of variable "${definition.name}" must be a boolean; received ${describeValue(definition.keyed)}`);
  }
  if (definition.secret !== undefined && typeof definition.secret !== 'boolean') {
    throw new ValidationError(`secret of variable "${definition.name}" must be a boolean; received ${describeValue(definition.secret)}`);
  }
  if (definition.confidential !== undefined && typeof definition.confidential !== 'boolean') {
    throw new ValidationError(`confidential of variable "${definition.name}" must be a boolean; received ${describeValue(definition.confidential)}`);
  }
  if (typeof definition.description !== 'string' || definition.description.length === 0) {
    throw new ValidationError(`description of variable "${definition.name}" must be a non-empty string`);
  }
  return Object.freeze({ ...definition, keyed: (definition.keyed ?? false) as K });
}

/** Declares one topic (or a family, with `<param>` placeholders). */
export function defineTopic(definition: TopicDefinition): TopicDefinition {
  if (typeof definition !== 'object' || definition === null) throw new ValidationError(`defineTopic needs an object; received ${describeValue(definition)}`);
  refuseUnknownOptions(`defineTopic(${describeValue(definition.name)})`, definition, TOPIC_FIELDS);
  if (typeof definition.name !== 'string' || definition.name.length === 0) {
    throw new ValidationError(`topic name must be a non-empty string; received ${describeValue(definition.name)}`);
  }
  return Object.freeze({ ...definition, publishers: [...definition.publishers], subscribers: [...definition.subscribers] });
}

/**
 * Declares a catalogue. Applications call it with their own variables and
 * topics (declared with {@link defineVar} and {@link defineTopic}) and get the
 * same typed access as the built-in ones; `mergeCatalogues` joins several.
 *
 * @example
 * const Shop = defineCatalogue('shop', {
 *   vars: { CartCount: defineVar({ name: 'CartCount', type: 'integer', owner: 'cart', description: 'Items per cart', keyed: true }) },
 *   topics: {},
 * });
 * await client.set(Shop.vars.CartCount, 'cart-42', 3);
 */
export function defineCatalogue<V extends Record<string, VarDefinition>, T extends Record<string, TopicDefinition>>(
  title: string,
  parts: { vars: V; topics: T },
): Catalogue<V, T> {
  const seen = new Set<string>();
  for (const variable of Object.values(parts.vars)) {
    if (seen.has(variable.name)) throw new ValidationError(`catalogue "${title}" declares variable "${variable.name}" twice`);
    seen.add(variable.name);
  }
  return Object.freeze({ title, vars: Object.freeze({ ...parts.vars }), topics: Object.freeze({ ...parts.topics }) });
}

/** Joins catalogues (the built-in one and an application's), refusing a variable name declared twice. */
export function mergeCatalogues(title: string, ...catalogues: Catalogue[]): Catalogue {
  const vars: Record<string, VarDefinition> = {};
  const topics: Record<string, TopicDefinition> = {};
  for (const catalogue of catalogues) {
    for (const [key, variable] of Object.entries(catalogue.vars)) {
      if (key in vars) throw new ValidationError(`catalogue "${catalogue.title}" redeclares variable "${key}"`);
      vars[key] = variable;
    }
    Object.assign(topics, catalogue.topics);
  }
  return defineCatalogue(title, { vars, topics });
}
