import { Packr } from 'msgpackr';
import { isSealed } from './FrameSealer';
import { decodeMsgpack } from './msgpack';
import { PlainEncoder } from './PlainEncoder';

/**
 * Turns values into bytes and back. The default is {@link MsgpackCodec}; a
 * custom codec must round-trip every value the application sends, and is
 * only safe between processes that all use it.
 */
export interface Codec {
  /** The bytes of one value; throwing refuses it (the send or `set` rejects with ValidationError, this error as its cause). */
  encode(value: unknown): Buffer;
  /** The value of bytes `encode` (or a peer's encoder) wrote; throwing marks them malformed (counted and skipped). */
  decode(bytes: Buffer): unknown;
}

/**
 * The default codec: plain MessagePack, so that any MessagePack library can
 * read what it writes and write what it reads (docs/protocol.md gives the
 * type mapping). Encoding is {@link PlainEncoder}'s (msgpackr's for what it
 * does not write itself), records off; decoding is the
 * strict decoder of `msgpack.ts`, which reads every byte as the
 * specification says, lets nothing in one input change how the next decodes, and builds
 * a tree no larger than the input (no references, no records, no classes
 * beyond Date and Buffer).
 */
export class MsgpackCodec implements Codec {
  private readonly encoder = new PlainEncoder(new Packr({ useRecords: false, useBigIntExtension: true, moreTypes: false }));

  /** Plain MessagePack (bigints of any size through msgpackr's bigint extension). */
  encode(value: unknown): Buffer {
    return this.encoder.encode(value);
  }

  /** Plain MessagePack, with the nesting and size limits a receiver enforces; throws on bytes that are not one whole value. */
  decode(bytes: Buffer): unknown {
    return decodeMsgpack(bytes);
  }
}

/** Version of the frame format; a receiver refuses frames of another version. */
export const PROTOCOL_VERSION = 5;

/**
 * A frame with no message yet: `[PROTOCOL_VERSION]`, to push the messages
 * onto. The one place that knows what leads a frame ({@link encodeFrame} and
 * the route's batcher build on it).
 */
export function newFrame(): unknown[] {
  return [PROTOCOL_VERSION];
}

/**
 * Encodes a frame: `[PROTOCOL_VERSION, message, message, ...]`. One frame
 * carries everything one process sent to one channel within one tick.
 */
export function encodeFrame(codec: Codec, messages: readonly unknown[]): Buffer {
  const frame = newFrame();
  for (const message of messages) frame.push(message);
  return codec.encode(frame);
}

/** Decodes a frame, returning its messages; throws with the reason when the bytes are not a frame. */
export function decodeFrame(codec: Codec, bytes: Buffer, maxBytes: number): unknown[] {
  if (bytes.length > maxBytes) throw new Error(`frame of ${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  if (codec instanceof MsgpackCodec) refuseOtherVersion(bytes);
  if (isSealed(bytes)) throw new Error('a sealed (signed) frame, and this receiver has no auth option to open it (docs/security.md)');
  return frameMessages(codec.decode(bytes));
}

/**
 * Names the version of a frame of another version before decoding the rest,
 * which may not even be plain MessagePack (version 2 used msgpackr records).
 */
function refuseOtherVersion(bytes: Buffer): void {
  const head = bytes[0];
  const at = head >= 0x91 && head <= 0x9f ? 1 : head === 0xdc ? 3 : head === 0xdd ? 5 : -1;
  const version = at > 0 && at < bytes.length ? bytes[at] : undefined;
  if (version !== undefined && version < 0x80 && version !== PROTOCOL_VERSION) throw versionError(version);
}

function versionError(version: unknown): Error {
  const integer = typeof version === 'number' || typeof version === 'bigint';
  const older = integer && version < PROTOCOL_VERSION ? ' (an older intracom: every process must speak the same version)' : '';
  // an integer as its digits (a bigint from a 64-bit format too), anything else as JSON: never "5" beside 5
  const shown = integer ? String(version) : typeof version === 'string' ? `${JSON.stringify(version)} (a string)` : (JSON.stringify(version) ?? String(version));
  return new Error(`unsupported frame version ${shown}${older}; this library speaks ${PROTOCOL_VERSION}`);
}

/** The version as a bigint: what a 64-bit integer format (uint 64, int 64) decodes to, whatever its value. */
const PROTOCOL_VERSION_BIG = BigInt(PROTOCOL_VERSION);

/** The messages of an already decoded frame; throws with the reason when the value is not a frame. */
export function frameMessages(decoded: unknown): unknown[] {
  if (!Array.isArray(decoded) || decoded.length < 2) throw new Error('not a frame: expected an array [version, message, ...]');
  // any integer format holding the version is the version (Go and Java encoders write small integers as int 64)
  if (decoded[0] !== PROTOCOL_VERSION && decoded[0] !== PROTOCOL_VERSION_BIG) throw versionError(decoded[0]);
  decoded.shift();
  return decoded;
}
