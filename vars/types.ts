/**
 * The typed shapes of the catalogue: variables and topics as data.
 *
 * A variable's `type` decides both its TypeScript type and how it is stored in
 * Redis, so a value written by one service reads back identically in another
 * (and stays readable with `redis-cli` where the type allows).
 */

/** Storage types a variable can have, and the TypeScript type each maps to. */
export interface VarTypeMap {
  /** UTF-8 text, stored as is. */
  string: string;
  /** A safe integer, stored as decimal text (so `INCRBY` works on it). */
  integer: number;
  /** Any finite number, stored as decimal text. */
  number: number;
  /** Stored as `1` or `0`. */
  boolean: boolean;
  /** Raw bytes, stored as is. */
  buffer: Buffer;
  /** A plain JSON value (objects, arrays, strings, numbers, booleans, null), stored as JSON text. */
  json: unknown;
  /** Any msgpack-able value (Date, bigint, Buffer, nested objects), stored as msgpack bytes. */
  msgpack: unknown;
}

/** The name of a variable storage type. */
export type VarType = keyof VarTypeMap;

/** The declaration of one variable in a catalogue. */
export interface VarDefinition<T extends VarType = VarType, K extends boolean = boolean> {
  /** Name of the variable: letters, digits, `_` and `-`, no dot (so that `intracom.var.<owner>.<name>` splits one way). Unique within a catalogue. */
  readonly name: string;
  /** Storage type; decides the TypeScript type of `get`/`set`. */
  readonly type: T;
  /** What the value means, for the generated catalogue page. */
  readonly description: string;
  /** The service that owns (writes) it (a dotted name such as `TeraServer.UserManagerModule` is allowed); its keys share that service's hash slot. */
  readonly owner: string;
  /** Default time to live in milliseconds applied by `set`, when any. */
  readonly ttlMs?: number;
  /**
   * When true the variable is a family keyed by a parameter (such as a login
   * counter per user uuid) and every access names the parameter.
   */
  readonly keyed: K;
  /** What the parameter is, for keyed variables (for the catalogue page). */
  readonly keyDescription?: string;
  /**
   * True for a secret (a signing key, a password): its change events carry no
   * value (watchers are told that it changed and read it with `get`), and the
   * library and the CLI never print its value.
   */
  readonly secret?: boolean;
  /**
   * True for a confidential variable: its stored value is encrypted and
   * signed with the writer's keys (the client's `auth.encryption`), so a
   * reader of Redis sees no plaintext, and its change events carry no value,
   * like a secret's. `increment` is refused (Redis cannot add to ciphertext).
   */
  readonly confidential?: boolean;
  /** True for keys the library itself manages; applications do not `set` them. */
  readonly internal?: boolean;
}

/** The TypeScript value type of a variable definition. */
export type VarValue<V> = V extends VarDefinition<infer T, boolean> ? VarTypeMap[T] : never;

/** The parameter list that follows a variable in `get`/`set`: `[key]` for keyed variables, `[]` otherwise. */
export type VarKeyArgs<V> = V extends VarDefinition<VarType, true> ? [key: string] : [];

/** The declaration of one pub/sub topic (or family of topics) in a catalogue. */
export interface TopicDefinition {
  /** The topic name, or a template with `<param>` placeholders such as `module.<name>.events`. */
  readonly name: string;
  /** What the payload is. */
  readonly payload: string;
  /** Services that publish on it (`*` for any). */
  readonly publishers: readonly string[];
  /** Services that subscribe to it (`*` for any). */
  readonly subscribers: readonly string[];
  /** Free text for the catalogue page. */
  readonly description?: string;
}

/** A catalogue: named variables and topics. */
export interface Catalogue<
  V extends Record<string, VarDefinition> = Record<string, VarDefinition>,
  T extends Record<string, TopicDefinition> = Record<string, TopicDefinition>,
> {
  /** What the catalogue is about (`intracom`, `shop`): the title of its rendered documentation. */
  readonly title: string;
  /** Its variables, by the name code uses (`Shop.vars.CartItems`), each declared with `defineVar`. */
  readonly vars: V;
  /** Its topics, by the name code uses, each declared with `defineTopic`. */
  readonly topics: T;
}
