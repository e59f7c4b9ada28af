import { describeValue } from './describe';
import { ValidationError } from './ValidationError';
import type { Catalogue, TopicDefinition, VarDefinition, VarType } from './types';

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const VAR_TYPES: readonly VarType[] = ['string', 'integer', 'number', 'boolean', 'buffer', 'json', 'msgpack'];

/** Throws a ValidationError naming the field and the value received unless `name` is a valid catalogue name. */
export function assertName(field: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name.length > 200) {
    throw new ValidationError(
      `${field} must be 1-200 characters of letters, digits, "_", "-" and "." (not starting with "." or "-"); received ${describeValue(name)}`,
    );
  }
}

/** Declares one variable; the returned object is what `RedisClient.get`/`set` take. */
export function defineVar<const T extends VarType, const K extends boolean = false>(
  definition: Omit<VarDefinition<T, K>, 'keyed'> & { keyed?: K },
): VarDefinition<T, K> {
  assertName('variable name', definition.name);
  // Internal entries document key families whose owner is a placeholder such as `<service>`.
  if (!definition.internal) assertName(`owner of variable "${definition.name}"`, definition.owner);
  if (!VAR_TYPES.includes(definition.type)) {
    throw new ValidationError(`type of variable "${definition.name}" must be one of ${VAR_TYPES.join(', ')}; received ${describeValue(definition.type)}`);
  }
  if (definition.ttlMs !== undefined && (!Number.isSafeInteger(definition.ttlMs) || definition.ttlMs <= 0)) {
    throw new ValidationError(`ttlMs of variable "${definition.name}" must be a positive integer; received ${describeValue(definition.ttlMs)}`);
  }
  if (typeof definition.description !== 'string' || definition.description.length === 0) {
    throw new ValidationError(`description of variable "${definition.name}" must be a non-empty string`);
  }
  return Object.freeze({ ...definition, keyed: (definition.keyed ?? false) as K });
}

/** Declares one topic (or a family, with `<param>` placeholders). */
export function defineTopic(definition: TopicDefinition): TopicDefinition {
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
 * await client.set(Shop.vars.CartCount, 3, 'cart-42');
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
