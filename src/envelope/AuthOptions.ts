import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../errors/ValidationError';
import { describeValue } from '../../vars/describe';
import { nestedOptions, refuseUnknownOptions, type OptionNames } from '../../vars/options';

/** A key as configuration gives it: PEM text (string or bytes) or a node:crypto KeyObject. */
export type KeyInput = string | Buffer | KeyObject;

/**
 * Payload encryption (AES-256-GCM). Keys come from configuration only; every
 * process that must read an encrypted frame or value holds the key of its key id.
 */
export interface EncryptionOptions {
  /** Id of the key this process encrypts with (travels in clear in each sealed frame). Required. */
  keyId: string;
  /** Every key this process may decrypt with, by key id: 32 bytes, or their base64 text. Must hold `keyId`. Several during a rotation. */
  keys: Record<string, Buffer | string>;
  /**
   * Encrypt every frame this process sends (events, calls, replies, queries).
   * With false, only the values of variables declared `confidential` are
   * encrypted.
   * @default true
   */
  frames?: boolean;
  /**
   * Refuse every frame and stream entry whose body is not encrypted (unsigned,
   * or signed in clear), counted `authUnencrypted`: a peer with a valid
   * signing key cannot downgrade what this process receives to clear text.
   * Set false while encryption is rolled out service by service. The values
   * of confidential variables are always required encrypted.
   * @default the value of `frames`
   */
  requireEncrypted?: boolean;
}

/**
 * Authenticated sources: every frame this process sends is signed with its
 * service's Ed25519 key, and every frame it receives is verified against the
 * public keys it trusts. See docs/security.md.
 */
export interface AuthOptions {
  /** Id of this service's signing key, sent in every frame so that receivers pick the right public key. Required with a private key. */
  keyId?: string;
  /** This service's Ed25519 private key (PEM or KeyObject). Without it (and without `privateKeyFile`) this process verifies but sends unsigned frames. */
  privateKey?: KeyInput;
  /** A file holding this service's Ed25519 private key in PEM, read once at construction. */
  privateKeyFile?: string;
  /**
   * Public keys of the services whose frames are accepted: service key, then
   * key id, then the Ed25519 public key (PEM or KeyObject). Several key ids per
   * service during a rotation. This service's own public key is derived from
   * its private key and need not be listed.
   * @default {}
   */
  publicKeys?: Record<string, Record<string, KeyInput>>;
  /** A directory of `<service>.<keyId>.pem` public key files, read once at construction and added to `publicKeys`. */
  publicKeysDir?: string;
  /**
   * Refuse unsigned frames. false is the migration mode: unsigned frames are
   * delivered with `sender.verified` false, signed ones are still verified.
   * @default true
   */
  requireSigned?: boolean;
  /** A pub/sub frame whose timestamp is further than this from the receiver's clock, either way, is refused; ids are remembered this long. In ms. @default 30000 */
  replayWindowMs?: number;
  /** At most this many frame ids are remembered; past it the oldest are forgotten and frames no newer than them are refused. @default 100000 */
  maxReplayIds?: number;
  /** Payload encryption. @default none */
  encryption?: EncryptionOptions;
}

/** The names of the options of `auth` and `auth.encryption`. */
export const AUTH_OPTION_NAMES: OptionNames<AuthOptions> = {
  keyId: true,
  privateKey: true,
  privateKeyFile: true,
  publicKeys: true,
  publicKeysDir: true,
  requireSigned: true,
  replayWindowMs: true,
  maxReplayIds: true,
  encryption: true,
};
export const ENCRYPTION_OPTION_NAMES: OptionNames<EncryptionOptions> = { keyId: true, keys: true, frames: true, requireEncrypted: true };

/** The defaults of {@link AuthOptions}. */
export const DEFAULT_AUTH = { requireSigned: true, replayWindowMs: 30_000, maxReplayIds: 100_000, publicKeys: {}, encryptFrames: true } as const;

/** Environment variables read when no `auth` option is given (see docs/security.md). */
export const AUTH_ENVIRONMENT = {
  keyId: 'INTRACOM_AUTH_KEY_ID',
  privateKeyFile: 'INTRACOM_AUTH_PRIVATE_KEY_FILE',
  publicKeysDir: 'INTRACOM_AUTH_PUBLIC_KEYS_DIR',
  requireSigned: 'INTRACOM_AUTH_REQUIRE_SIGNED',
  encryptionKeyId: 'INTRACOM_ENCRYPTION_KEY_ID',
  encryptionKeysFile: 'INTRACOM_ENCRYPTION_KEYS_FILE',
} as const;

/** Validated authentication settings of one process. */
export interface AuthSettings {
  service: string;
  keyId: string | undefined;
  privateKey: KeyObject | undefined;
  publicKeys: Map<string, Map<string, KeyObject>>;
  requireSigned: boolean;
  replayWindowMs: number;
  maxReplayIds: number;
  encryptKeyId: string | undefined;
  encryptionKeys: Map<string, Buffer>;
  encryptFrames: boolean;
  /** Refuse frames whose body is not encrypted. */
  requireEncrypted: boolean;
}

/** Longest service key, key id or frame id a sealed frame may carry, in bytes. */
export const MAX_ID_BYTES = 256;

/**
 * Validates `auth` (or, when it is undefined, the {@link AUTH_ENVIRONMENT}
 * variables) into settings; undefined when neither configures anything.
 * Throws ValidationError naming the option and the value.
 */
export function resolveAuth(service: string, options: AuthOptions | undefined, env: NodeJS.ProcessEnv = process.env): AuthSettings | undefined {
  const given = options ?? fromEnvironment(env);
  if (given === undefined) return undefined;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new ValidationError(`auth must be an object; received ${describeValue(given)}`);
  refuseUnknownOptions('RedisClient', given, AUTH_OPTION_NAMES, 'auth.');
  if (given.encryption !== undefined) nestedOptions('RedisClient', 'auth.encryption', given.encryption, ENCRYPTION_OPTION_NAMES);
  const privateKey = given.privateKeyFile !== undefined ? readPrivate(readOption('auth.privateKeyFile', given.privateKeyFile)) : given.privateKey === undefined ? undefined : privateOf('auth.privateKey', given.privateKey);
  const keyId = given.keyId === undefined ? undefined : id('auth.keyId', given.keyId);
  if (privateKey !== undefined && keyId === undefined) throw new ValidationError('auth.keyId is required with a private key; received undefined');
  const publicKeys = new Map<string, Map<string, KeyObject>>();
  const trust = (owner: string, kid: string, key: KeyInput, option: string): void => {
    let ids = publicKeys.get(owner);
    if (ids === undefined) publicKeys.set(owner, (ids = new Map()));
    ids.set(kid, publicOf(option, key));
  };
  const listed = given.publicKeys ?? DEFAULT_AUTH.publicKeys;
  if (typeof listed !== 'object' || listed === null) throw new ValidationError(`auth.publicKeys must be an object; received ${describeValue(listed)}`);
  for (const [owner, ids] of Object.entries(listed)) {
    id('auth.publicKeys service', owner);
    if (typeof ids !== 'object' || ids === null) throw new ValidationError(`auth.publicKeys.${owner} must be an object of key id to public key; received ${describeValue(ids)}`);
    for (const [kid, key] of Object.entries(ids)) trust(owner, id(`auth.publicKeys.${owner} key id`, kid), key as KeyInput, `auth.publicKeys.${owner}.${kid}`);
  }
  if (given.publicKeysDir !== undefined) {
    const dir = readOption('auth.publicKeysDir', given.publicKeysDir);
    for (const file of readdirSync(dir)) {
      const match = /^(.+)\.([^.]+)\.pem$/.exec(file);
      if (match === null) continue;
      trust(match[1], match[2], readFileSync(join(dir, file), 'utf8'), `auth.publicKeysDir file ${file}`);
    }
  }
  if (privateKey !== undefined && keyId !== undefined) trust(service, keyId, createPublicKey(privateKey), 'auth.privateKey');
  const requireSigned = flag('auth.requireSigned', given.requireSigned ?? DEFAULT_AUTH.requireSigned);
  const replayWindowMs = positive('auth.replayWindowMs', given.replayWindowMs ?? DEFAULT_AUTH.replayWindowMs);
  const maxReplayIds = positive('auth.maxReplayIds', given.maxReplayIds ?? DEFAULT_AUTH.maxReplayIds);
  const encryptionKeys = new Map<string, Buffer>();
  let encryptKeyId: string | undefined;
  let encryptFrames = false;
  let requireEncrypted = false;
  if (given.encryption !== undefined) {
    const encryption = given.encryption;
    if (typeof encryption !== 'object' || encryption === null) throw new ValidationError(`auth.encryption must be an object; received ${describeValue(encryption)}`);
    if (typeof encryption.keys !== 'object' || encryption.keys === null) throw new ValidationError(`auth.encryption.keys must be an object of key id to key; received ${describeValue(encryption.keys)}`);
    for (const [kid, key] of Object.entries(encryption.keys)) encryptionKeys.set(id('auth.encryption.keys key id', kid), secretOf(`auth.encryption.keys.${kid}`, key));
    encryptKeyId = id('auth.encryption.keyId', encryption.keyId);
    if (!encryptionKeys.has(encryptKeyId)) throw new ValidationError(`auth.encryption.keyId must name one of auth.encryption.keys; received ${describeValue(encryptKeyId)}`);
    encryptFrames = flag('auth.encryption.frames', encryption.frames ?? DEFAULT_AUTH.encryptFrames);
    requireEncrypted = flag('auth.encryption.requireEncrypted', encryption.requireEncrypted ?? encryptFrames);
    if (encryptFrames && privateKey === undefined) throw new ValidationError('auth.encryption.frames needs a signing key (auth.privateKey or auth.privateKeyFile): encrypted frames travel sealed; received none');
  }
  return { service, keyId, privateKey, publicKeys, requireSigned, replayWindowMs, maxReplayIds, encryptKeyId, encryptionKeys, encryptFrames, requireEncrypted };
}

function fromEnvironment(env: NodeJS.ProcessEnv): AuthOptions | undefined {
  const e = AUTH_ENVIRONMENT;
  if (![e.keyId, e.privateKeyFile, e.publicKeysDir, e.encryptionKeyId].some((name) => env[name] !== undefined && env[name] !== '')) return undefined;
  const options: AuthOptions = { keyId: env[e.keyId] || undefined, privateKeyFile: env[e.privateKeyFile] || undefined, publicKeysDir: env[e.publicKeysDir] || undefined };
  const required = env[e.requireSigned];
  if (required !== undefined && required !== '') {
    if (required !== '0' && required !== '1') throw new ValidationError(`${e.requireSigned} must be 0 or 1; received ${JSON.stringify(required)}`);
    options.requireSigned = required === '1';
  }
  const encryptionKeyId = env[e.encryptionKeyId];
  if (encryptionKeyId) {
    const file = env[e.encryptionKeysFile];
    if (!file) throw new ValidationError(`${e.encryptionKeysFile} must name a JSON file of key id to base64 key when ${e.encryptionKeyId} is set; received ${JSON.stringify(file)}`);
    let keys: unknown;
    try {
      keys = JSON.parse(readFileSync(file, 'utf8'));
    } catch (cause) {
      throw new ValidationError(`${e.encryptionKeysFile} must name a JSON file of key id to base64 key; ${JSON.stringify(file)} could not be read: ${(cause as Error).message}`);
    }
    options.encryption = { keyId: encryptionKeyId, keys: keys as Record<string, string> };
  }
  return options;
}

function readOption(option: string, path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw new ValidationError(`${option} must be a path; received ${describeValue(path)}`);
  return path;
}

function readPrivate(path: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ValidationError(`auth.privateKeyFile ${JSON.stringify(path)} could not be read: ${(cause as Error).message}`);
  }
  return privateOf('auth.privateKeyFile', text);
}

function privateOf(option: string, key: unknown): KeyObject {
  let object: KeyObject;
  try {
    object = isKeyObject(key) ? key : createPrivateKey(key as string | Buffer);
  } catch {
    throw new ValidationError(`${option} must be an Ed25519 private key (PEM or KeyObject); received ${describeKey(key)}`);
  }
  if (object.type !== 'private' || object.asymmetricKeyType !== 'ed25519') throw new ValidationError(`${option} must be an Ed25519 private key; received a ${object.asymmetricKeyType ?? ''} ${object.type} key`);
  return object;
}

function publicOf(option: string, key: unknown): KeyObject {
  let object: KeyObject;
  try {
    object = isKeyObject(key) ? (key.type === 'private' ? createPublicKey(key) : key) : createPublicKey(key as string | Buffer);
  } catch {
    throw new ValidationError(`${option} must be an Ed25519 public key (PEM or KeyObject); received ${describeKey(key)}`);
  }
  if (object.asymmetricKeyType !== 'ed25519') throw new ValidationError(`${option} must be an Ed25519 public key; received a ${object.asymmetricKeyType ?? ''} ${object.type} key`);
  return object;
}

function secretOf(option: string, key: unknown): Buffer {
  const bytes = Buffer.isBuffer(key) ? key : typeof key === 'string' ? Buffer.from(key, 'base64') : undefined;
  if (bytes === undefined || bytes.length !== 32) throw new ValidationError(`${option} must be 32 bytes (a Buffer or base64 text); received ${bytes === undefined ? describeValue(key) : `${bytes.length} bytes`}`);
  return Buffer.from(bytes);
}

function isKeyObject(key: unknown): key is KeyObject {
  return typeof key === 'object' && key !== null && typeof (key as KeyObject).asymmetricKeyType !== 'undefined' && typeof (key as KeyObject).export === 'function';
}

/** Never prints key material: only what kind of value it was. */
function describeKey(key: unknown): string {
  if (typeof key === 'string') return `a string of ${key.length} characters that is not such a PEM key`;
  if (Buffer.isBuffer(key)) return `${key.length} bytes that are not such a PEM key`;
  return describeValue(key);
}

function id(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_ID_BYTES) {
    throw new ValidationError(`${option} must be a non-empty string of at most ${MAX_ID_BYTES} bytes; received ${describeValue(value)}`);
  }
  return value;
}

function flag(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ValidationError(`${option} must be a boolean; received ${describeValue(value)}`);
  return value;
}

function positive(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new ValidationError(`${option} must be a positive integer; received ${describeValue(value)}`);
  return value;
}
