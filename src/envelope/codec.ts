import { Packr, Unpackr } from 'msgpackr';

/**
 * The query envelope's fields in the order `createQuery` writes them. Both
 * ends of the wire know this shape in advance (a msgpackr shared structure),
 * so an envelope is written without its keys: about half the bytes and half
 * the time (see {@link WIRE_STRUCTURES}).
 */
export const QUERY_FIELDS = [
  'queryId',
  'serviceNameSource',
  'serviceNameDest',
  'route',
  'type',
  'action',
  'query',
  'response',
  'result',
  'state',
  'query_ts',
  'response_ts',
  'query_ms',
  'timeout_ms',
  'processAttempts',
] as const;

/**
 * Every object shape the library itself puts on the wire, known to both ends
 * in advance (msgpackr shared structures: written without their keys). The
 * order of this list and of each shape's keys is part of the wire format:
 * changing either means bumping PROTOCOL_VERSION. Other shapes (payloads)
 * travel as records defined inline, once per frame.
 */
export const WIRE_STRUCTURES: ReadonlyArray<readonly string[]> = [
  QUERY_FIELDS,
  ['queryId', 'serviceNameSource', 'sourceInstance', 'action', 'query', 'timeout_ms'], // RPC request
  ['queryId', 'result'], // RPC result
  ['name', 'createdAt', 'serviceName'], // event headers
  ['headers', 'payloads'], // events sharing their headers
  ['headers', 'payload'], // one event
  ['serviceNameSource', 'sourceInstance'], // RPC request headers (the caller's half)
  ['queryId', 'action', 'query', 'timeout_ms'], // RPC request body (the call's half)
];

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
 * The library's own shapes are predefined structures (see {@link WIRE_STRUCTURES}).
 */
export class MsgpackCodec implements Codec {
  // the library's own shapes are predefined, and no other shape is ever shared: the rest travels as inline records
  private readonly packr = new Packr({ useRecords: true, useBigIntExtension: true, moreTypes: false, structures: WIRE_STRUCTURES.map((shape) => [...shape]), maxSharedStructures: WIRE_STRUCTURES.length });
  private readonly unpackr = new Unpackr({ useRecords: true, mapsAsObjects: true, structures: WIRE_STRUCTURES.map((shape) => [...shape]), maxSharedStructures: WIRE_STRUCTURES.length });

  encode(value: unknown): Buffer {
    return this.packr.pack(value);
  }

  decode(bytes: Buffer): unknown {
    return this.unpackr.unpack(bytes);
  }
}

/** Version of the frame format; a receiver refuses frames of another version. */
export const PROTOCOL_VERSION = 2;

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
  return frameMessages(codec.decode(bytes));
}

/** The messages of an already decoded frame; throws with the reason when the value is not a frame. */
export function frameMessages(decoded: unknown): unknown[] {
  if (!Array.isArray(decoded) || decoded.length < 2) throw new Error('not a frame: expected an array [version, message, ...]');
  if (decoded[0] !== PROTOCOL_VERSION) throw new Error(`unsupported frame version ${JSON.stringify(decoded[0])}; this library speaks ${PROTOCOL_VERSION}`);
  decoded.shift();
  return decoded;
}
