import { Packr, Unpackr } from 'msgpackr';

/**
 * Turns values into bytes and back. The default is msgpackr; a custom codec
 * must round-trip every value the application sends.
 */
export interface Codec {
  encode(value: unknown): Buffer;
  decode(bytes: Buffer): unknown;
}

/**
 * The default codec: msgpack with msgpackr records (a repeated object shape
 * costs its keys once per frame), bigint of any size, Date, Buffer, and maps
 * decoded as plain objects (so messages from other languages read naturally).
 * msgpackr renames a `__proto__` key, so decoding cannot pollute prototypes.
 */
export class MsgpackCodec implements Codec {
  private readonly packr = new Packr({ useRecords: true, useBigIntExtension: true, moreTypes: false });
  private readonly unpackr = new Unpackr({ useRecords: true, mapsAsObjects: true });

  encode(value: unknown): Buffer {
    return this.packr.pack(value);
  }

  decode(bytes: Buffer): unknown {
    return this.unpackr.unpack(bytes);
  }
}

/** Version of the frame format; a receiver refuses frames of another version. */
export const PROTOCOL_VERSION = 1;

/**
 * Encodes a frame: `[PROTOCOL_VERSION, message, message, ...]`. One frame
 * carries everything one process sent to one channel within one tick.
 */
export function encodeFrame(codec: Codec, messages: readonly unknown[]): Buffer {
  return codec.encode([PROTOCOL_VERSION, ...messages]);
}

/** Decodes a frame, returning its messages; throws with the reason when the bytes are not a frame. */
export function decodeFrame(codec: Codec, bytes: Buffer, maxBytes: number): unknown[] {
  if (bytes.length > maxBytes) throw new Error(`frame of ${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  const decoded = codec.decode(bytes);
  if (!Array.isArray(decoded) || decoded.length < 2) throw new Error('not a frame: expected an array [version, message, ...]');
  if (decoded[0] !== PROTOCOL_VERSION) throw new Error(`unsupported frame version ${JSON.stringify(decoded[0])}; this library speaks ${PROTOCOL_VERSION}`);
  decoded.shift();
  return decoded;
}
