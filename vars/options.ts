/**
 * How every options object refuses a name it does not know: a misspelt
 * option (`conectTimeoutMs`) would otherwise be ignored and its default used
 * without a word.
 */
import { describeValue } from './describe';
import { ValidationError } from './ValidationError';

/**
 * The names of an options interface, as an object with one key per option:
 * typed `Record<keyof Options, true>`, so that the compiler fails when an
 * option is added to the interface and not here, or listed here and not
 * declared there. An option marked `'internal'` is accepted but never
 * suggested (it is not part of the documented API).
 */
export type OptionNames<Options> = Readonly<Record<keyof Options & string, true | 'internal'>>;

/**
 * Throws a ValidationError naming the first enumerable key of `options`,
 * own or inherited (symbols aside), that `known` does not list, with the nearest known name when one is
 * close. `known` has one key per option (its values do not matter: an
 * {@link OptionNames} object or a complete defaults object); `prefix` names a
 * nested object (`limits.`); `what` says whose options they are
 * (`RedisClient`).
 */
export function refuseUnknownOptions(what: string, options: object, known: Readonly<Record<string, unknown>>, prefix = ''): void {
  // for..in, not Object.keys: an option inherited through a prototype is read like an own one, so it is checked like one
  for (const name in options) {
    if (Object.hasOwn(known, name)) continue;
    const documented = Object.keys(known).filter((option) => known[option] !== 'internal');
    const nearest = nearestName(name, documented);
    const hint = nearest === undefined ? `; the options are ${documented.map((option) => `${prefix}${option}`).join(', ')}` : `; did you mean "${prefix}${nearest}"?`;
    throw new ValidationError(`unknown ${what} option ${JSON.stringify(`${prefix}${name}`)}${hint}`);
  }
}

/**
 * The known name closest to `name`, or undefined: the same name in another
 * case, then one that it begins or that begins it (`ttl` for `ttlMs`), then
 * one within an edit distance of a third of its length (at least 1), its
 * beginning counted as one edit (`timout` for `timeoutMs`).
 */
function nearestName(name: string, known: string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const known = candidate.toLowerCase();
    const distance = known === lower ? 0 : lower.length >= 3 && (known.startsWith(lower) || lower.startsWith(known)) ? 1 : Math.min(editDistance(lower, known), beginningDistance(lower, known));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** One more than the edit distance from `name` to the beginning of `known` (a misspelt name whose unit was left off). */
function beginningDistance(name: string, known: string): number {
  if (known.length <= name.length + 1) return Infinity;
  return editDistance(name, known.slice(0, name.length + 1)) + 1;
}

/** Levenshtein distance, with one row of memory. */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/**
 * Checks a nested options object (`limits`, `registry`): undefined, or a
 * plain object whose keys `known` lists. Returns it (or an empty object).
 */
export function nestedOptions<T extends object>(what: string, name: string, value: T | undefined, known: Readonly<Record<string, unknown>>): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ValidationError(`${what} option ${name} must be an object; received ${describeValue(value)}`);
  refuseUnknownOptions(what, value, known, `${name}.`);
  return value;
}

/**
 * Checks a `signal` option: undefined or an AbortSignal (anything else would
 * fail later with a plain TypeError, or never fire). `option` names it as the
 * message shows it (`signal (call option)`).
 */
export function assertAbortSignal(option: string, value: unknown): void {
  if (value !== undefined && !(value instanceof AbortSignal)) throw new ValidationError(`${option} must be an AbortSignal; received ${describeValue(value)}`);
}
