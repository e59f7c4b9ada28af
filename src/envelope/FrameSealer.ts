import { createCipheriv, createDecipheriv, randomBytes, sign, verify } from 'node:crypto';
import { Packr } from 'msgpackr';
import { AuthenticationError } from '../errors/AuthenticationError';
import { MAX_ID_BYTES, type AuthSettings } from './AuthOptions';
import { decodeMsgpack } from './msgpack';
import { ReplayWindow } from './ReplayWindow';
import type { Sender } from './sender';

/** First element of a sealed frame: tells it from a plain frame (`[3, ...]`) and names the seal's version. */
export const SEAL_TAG = 's1';
/** Elements of a sealed frame. */
const SEALED_LENGTH = 9;
const SIGNATURE_BYTES = 64;
/** The signature's bin 8 header and its bytes: always the last 66 bytes of a sealed frame. */
const SIGNATURE_TAIL = 2 + SIGNATURE_BYTES;
const IV_BYTES = 12;
const GCM_TAG_BYTES = 16;
const FRAME_ID_BYTES = 16;

/** What a sealed frame opened to: the inner bytes (a plain frame, or a stored value) and who sent them. */
export interface Opened {
  inner: Buffer;
  sender: Sender;
}

/** Counters of refused frames, by kind of refusal. */
export interface AuthCounters {
  /** Frames or values refused by authentication (every reason below). */
  authRefused: number;
  /** Of those: unsigned where a signature is required. */
  authUnsigned: number;
  /** Of those: signature did not verify, unknown sender or key id, claim other than the signer, bad seal structure, undecryptable. */
  authForged: number;
  /** Of those: outside the replay window or a frame id seen before. */
  authReplayed: number;
  /** Of those: a body in clear (unsigned, or signed unencrypted) where encryption is required (`encryption.requireEncrypted`, a confidential variable's value). */
  authUnencrypted: number;
}

/** Counters at zero. */
export function emptyAuthCounters(): AuthCounters {
  return { authRefused: 0, authUnsigned: 0, authForged: 0, authReplayed: 0, authUnencrypted: 0 };
}

/**
 * Seals and opens frames: the wire format of docs/protocol.md "Sealed
 * frames". A sealed frame is the MessagePack array
 * `["s1", service, keyId, ts, frameId, to, encKeyId, body, signature]`; the
 * Ed25519 signature covers every byte before it (the array header says 9
 * elements). `to` binds the frame to the channel, stream or key it was
 * written to, so that it cannot be moved elsewhere. One signature per frame:
 * every message coalesced into it shares the cost.
 */
export class FrameSealer {
  private readonly packr = new Packr({ useRecords: false, moreTypes: false });
  /**
   * One replay window per signing service: a service whose key is stolen can fill its own window (and
   * raise its own floor with timestamps ahead of this clock), never another service's.
   */
  private readonly replays = new Map<string, ReplayWindow>();

  constructor(
    readonly settings: AuthSettings,
    readonly counters: AuthCounters = emptyAuthCounters(),
    /** The clock frames are stamped and checked with (tests move it). */
    private readonly now: () => number = Date.now,
  ) {
  }

  /** True when this process signs what it sends. */
  get signs(): boolean {
    return this.settings.privateKey !== undefined;
  }

  /** True when this process can encrypt. */
  get canEncrypt(): boolean {
    return this.settings.encryptKeyId !== undefined && this.signs;
  }

  /**
   * Seals `inner` for `to`: signed when this process has a key (else
   * returned unchanged), encrypted when `encrypt` (frames: `encryption.frames`).
   */
  seal(inner: Buffer, to: string, encrypt: boolean = this.settings.encryptFrames): Buffer {
    const { privateKey, keyId, service } = this.settings;
    if (privateKey === undefined) return inner;
    let encKeyId: string | null = null;
    let body = inner;
    if (encrypt) {
      encKeyId = this.settings.encryptKeyId as string;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', this.settings.encryptionKeys.get(encKeyId) as Buffer, iv);
      body = Buffer.concat([iv, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
    }
    const head = this.packr.pack([SEAL_TAG, service, keyId, this.now(), randomBytes(FRAME_ID_BYTES), to, encKeyId, body]);
    head[0] = 0x90 | SEALED_LENGTH; // the signed bytes announce the signature that follows them
    const signature = sign(null, head, privateKey);
    return Buffer.concat([head, SIGNATURE_HEADER, signature]);
  }

  /**
   * Opens what arrived on `to`: verifies and decrypts a sealed frame, or
   * passes an unsigned one through when signing is not required. With
   * `fresh`, the timestamp must be within the replay window and the frame id
   * new (pub/sub frames; not stream entries, which are redelivered by
   * design, nor stored values); `scope` separates receivers that each see
   * the frame once (an exact and a pattern subscription); with `encrypted`
   * (by default `encryption.requireEncrypted`), a body in clear is refused,
   * however well signed. Counts and throws AuthenticationError.
   */
  open(bytes: Buffer, to: string, fresh: boolean, scope = '', encrypted = this.settings.requireEncrypted): Opened {
    if (!isSealed(bytes)) {
      if (this.settings.requireSigned) throw this.refuse('authUnsigned', to, 'unsigned frame; this receiver requires signed frames');
      if (encrypted) throw this.refuse('authUnencrypted', to, 'unsigned frame in clear; this receiver requires encrypted frames');
      return { inner: bytes, sender: UNVERIFIED };
    }
    let fields: unknown;
    try {
      fields = decodeMsgpack(bytes);
    } catch (cause) {
      throw this.refuse('authForged', to, `sealed frame is not MessagePack: ${(cause as Error).message}`);
    }
    const problem = sealProblem(fields, bytes);
    if (problem !== undefined) throw this.refuse('authForged', to, problem);
    const [, service, keyId, ts, frameId, target, encKeyId, body, signature] = fields as SealedFields;
    const key = this.settings.publicKeys.get(service)?.get(keyId);
    if (key === undefined) {
      const known = this.settings.publicKeys.has(service) ? `no key "${clip(keyId)}" of service "${clip(service)}"` : `no key of service "${clip(service)}"`;
      throw this.refuse('authForged', to, `${known} is trusted here`);
    }
    if (!verify(null, bytes.subarray(0, bytes.length - SIGNATURE_TAIL), key, signature)) throw this.refuse('authForged', to, `signature of "${clip(service)}" key "${clip(keyId)}" does not verify`);
    if (target !== to) throw this.refuse('authForged', to, `frame signed for "${clip(target)}" arrived on another name`);
    if (fresh) {
      let replay = this.replays.get(service);
      if (replay === undefined) {
        // only a trusted service gets here (its signature verified), so the windows are bounded by the keys configured
        replay = new ReplayWindow(this.settings.replayWindowMs, this.settings.maxReplayIds);
        this.replays.set(service, replay);
      }
      const reason = replay.admit(service, `${scope}\u0000${frameId.toString('base64')}`, Number(ts), this.now());
      if (reason !== undefined) throw this.refuse('authReplayed', to, reason);
    }
    // after the signature and replay checks, so that a forged or replayed frame is counted as such
    if (encKeyId === null && encrypted) throw this.refuse('authUnencrypted', to, `frame of "${clip(service)}" in clear; this receiver requires encrypted frames`);
    let inner = body;
    if (encKeyId !== null) {
      const secret = this.settings.encryptionKeys.get(encKeyId);
      if (secret === undefined) throw this.refuse('authForged', to, `encrypted with key "${clip(encKeyId)}", which this receiver does not hold`);
      if (body.length < IV_BYTES + GCM_TAG_BYTES) throw this.refuse('authForged', to, 'ciphertext shorter than its IV and tag');
      try {
        const decipher = createDecipheriv('aes-256-gcm', secret, body.subarray(0, IV_BYTES));
        decipher.setAuthTag(body.subarray(body.length - GCM_TAG_BYTES));
        inner = Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - GCM_TAG_BYTES)), decipher.final()]);
      } catch {
        throw this.refuse('authForged', to, `ciphertext does not decrypt with key "${clip(encKeyId)}"`);
      }
    }
    return { inner, sender: { service, verified: true, keyId } };
  }

  /** Counts and returns the refusal of a verified frame whose messages claim another sender ({@link attest}). */
  refuseClaim(to: string, reason: string): AuthenticationError {
    return this.refuse('authForged', to, reason);
  }

  /** How many frame ids the replay windows hold now. */
  get rememberedIds(): number {
    let size = 0;
    for (const replay of this.replays.values()) size += replay.size;
    return size;
  }

  private refuse(kind: Exclude<keyof AuthCounters, 'authRefused'>, to: string, reason: string): AuthenticationError {
    this.counters.authRefused += 1;
    this.counters[kind] += 1;
    return new AuthenticationError(to, reason);
  }
}

type SealedFields = [string, string, string, number | bigint, Buffer, string, string | null, Buffer, Buffer];

const SIGNATURE_HEADER = Buffer.from([0xc4, SIGNATURE_BYTES]);
const UNVERIFIED: Sender = Object.freeze({ service: '', verified: false });

/** True when the bytes start like a sealed frame: a 9-element array whose first element is the string "s1". */
export function isSealed(bytes: Buffer): boolean {
  return bytes.length > 4 && bytes[0] === (0x90 | SEALED_LENGTH) && bytes[1] === 0xa2 && bytes[2] === 0x73 && bytes[3] === 0x31;
}

function sealProblem(fields: unknown, bytes: Buffer): string | undefined {
  if (!Array.isArray(fields) || fields.length !== SEALED_LENGTH) return 'sealed frame is not an array of 9';
  const [, service, keyId, ts, frameId, to, encKeyId, body, signature] = fields;
  if (!isId(service)) return 'sealed frame: service is not a string of 1 to 256 bytes';
  if (!isId(keyId)) return 'sealed frame: key id is not a string of 1 to 256 bytes';
  if (!((typeof ts === 'number' && Number.isSafeInteger(ts) && ts >= 0) || (typeof ts === 'bigint' && ts >= 0n && ts <= BigInt(Number.MAX_SAFE_INTEGER)))) return 'sealed frame: timestamp is not a non-negative integer';
  if (!Buffer.isBuffer(frameId) || frameId.length === 0 || frameId.length > MAX_ID_BYTES) return 'sealed frame: frame id is not bin of 1 to 256 bytes';
  if (typeof to !== 'string') return 'sealed frame: destination is not a string';
  if (encKeyId !== null && !isId(encKeyId)) return 'sealed frame: encryption key id is neither nil nor a string of 1 to 256 bytes';
  if (!Buffer.isBuffer(body)) return 'sealed frame: body is not bin';
  if (!Buffer.isBuffer(signature) || signature.length !== SIGNATURE_BYTES) return `sealed frame: signature is not bin of ${SIGNATURE_BYTES} bytes`;
  if (bytes[bytes.length - SIGNATURE_TAIL] !== 0xc4 || bytes[bytes.length - SIGNATURE_TAIL + 1] !== SIGNATURE_BYTES) return 'sealed frame: signature is not written as bin 8';
  return undefined;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && Buffer.byteLength(value) <= MAX_ID_BYTES;
}

/** Keeps hostile names short in messages and logs. */
function clip(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}...` : text;
}
