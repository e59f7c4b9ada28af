/**
 * A strict MessagePack decoder for bytes received from other processes.
 *
 * It reads exactly what the MessagePack specification says and nothing more:
 * every positive fixint (0x00-0x7f) is an integer, whatever came before it;
 * nothing in one input changes how another decodes (there is no state kept
 * between calls); nothing decoded refers to something else decoded, so the
 * result is a tree with at most one node per byte received and decoding is
 * linear in the input's length. Three extension types are understood, all
 * other extension types are refused:
 *
 * - `-1`, the specification's timestamp: a `Date`;
 * - `0` with one data byte: `undefined` (what msgpackr writes for it);
 * - `0x42`: a big-endian two's-complement integer of any length, as a
 *   `bigint` (what msgpackr writes for a bigint beyond 64 bits).
 *
 * Maps become plain objects: keys that are strings stay, integer, float,
 * boolean and nil keys become their decimal text, other keys are refused; a
 * `__proto__` key is renamed `__proto_` so that no input can set a prototype.
 * The 64-bit integer formats (uint64 0xcf, int64 0xd3) always become
 * bigints, whatever their value: exact, and a JavaScript bigint (which
 * msgpackr writes in them) comes back a bigint; every other integer and
 * float format becomes a number (msgpackr writes numbers beyond 32 bits as
 * float64).
 */

/** How deep arrays and maps may nest; deeper input is refused (not a stack overflow). */
export const MAX_DEPTH = 512;

let src: Buffer = Buffer.alloc(0);
let view: DataView = new DataView(src.buffer);
let pos = 0;
let end = 0;

/** Decodes one MessagePack value that must span all of `bytes`; throws an Error naming the fault. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  pos = 0;
  end = src.length;
  try {
    if (end === 0) throw new Error('no data');
    const value = read(0);
    if (pos !== end) throw new Error(`${end - pos} bytes after the end of the value`);
    return value;
  } finally {
    src = EMPTY;
    view = EMPTY_VIEW;
  }
}

const EMPTY = Buffer.alloc(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

function need(count: number): void {
  if (pos + count > end) throw new Error('unexpected end of data');
}

function read(depth: number): unknown {
  if (pos >= end) throw new Error('unexpected end of data');
  const token = src[pos++];
  if (token < 0x80) return token;
  if (token < 0x90) return readMap(token - 0x80, depth);
  if (token < 0xa0) return readArray(token - 0x90, depth);
  if (token < 0xc0) return readString(token - 0xa0);
  if (token >= 0xe0) return token - 0x100;
  let value: number;
  switch (token) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      need(1);
      return readBin(src[pos++]);
    case 0xc5:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return readBin(value);
    case 0xc6:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return readBin(value);
    case 0xc7:
      need(1);
      return readExt(src[pos++]);
    case 0xc8:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return readExt(value);
    case 0xc9:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return readExt(value);
    case 0xca:
      need(4);
      value = view.getFloat32(pos);
      pos += 4;
      return value;
    case 0xcb:
      need(8);
      value = view.getFloat64(pos);
      pos += 8;
      return value;
    case 0xcc:
      need(1);
      return src[pos++];
    case 0xcd:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return value;
    case 0xce:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return value;
    case 0xcf: {
      need(8);
      const result = view.getBigUint64(pos);
      pos += 8;
      return result;
    }
    case 0xd0:
      need(1);
      return view.getInt8(pos++);
    case 0xd1:
      need(2);
      value = view.getInt16(pos);
      pos += 2;
      return value;
    case 0xd2:
      need(4);
      value = view.getInt32(pos);
      pos += 4;
      return value;
    case 0xd3: {
      need(8);
      const result = view.getBigInt64(pos);
      pos += 8;
      return result;
    }
    case 0xd4:
      return readExt(1);
    case 0xd5:
      return readExt(2);
    case 0xd6:
      return readExt(4);
    case 0xd7:
      return readExt(8);
    case 0xd8:
      return readExt(16);
    case 0xd9:
      need(1);
      return readString(src[pos++]);
    case 0xda:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return readString(value);
    case 0xdb:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return readString(value);
    case 0xdc:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return readArray(value, depth);
    case 0xdd:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return readArray(value, depth);
    case 0xde:
      need(2);
      value = view.getUint16(pos);
      pos += 2;
      return readMap(value, depth);
    case 0xdf:
      need(4);
      value = view.getUint32(pos);
      pos += 4;
      return readMap(value, depth);
    default:
      throw new Error(`byte 0x${token.toString(16)} at offset ${pos - 1} is not MessagePack`);
  }
}

function readArray(length: number, depth: number): unknown[] {
  // every element takes at least one byte: a length beyond what is left is a lie, refused before allocating
  if (length > end - pos) throw new Error(`array of ${length} elements in ${end - pos} bytes`);
  if (depth >= MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels`);
  const array = new Array(length);
  for (let i = 0; i < length; i++) array[i] = read(depth + 1);
  return array;
}

function readMap(size: number, depth: number): Record<string, unknown> {
  if (size * 2 > end - pos) throw new Error(`map of ${size} entries in ${end - pos} bytes`);
  if (depth >= MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels`);
  const object: Record<string, unknown> = {};
  for (let i = 0; i < size; i++) {
    let key = readKey(depth + 1);
    if (key === '__proto__') key = '__proto_';
    object[key] = read(depth + 1);
  }
  return object;
}

function readKey(depth: number): string {
  if (pos >= end) throw new Error('unexpected end of data');
  const token = src[pos];
  if (token >= 0xa0 && token < 0xc0) {
    pos++;
    return readShortKey(token - 0xa0);
  }
  const key = read(depth);
  switch (typeof key) {
    case 'string':
      return key;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(key);
    default:
      if (key === null) return 'null';
      throw new Error(`a map key is ${Buffer.isBuffer(key) ? 'a bin' : Array.isArray(key) ? 'an array' : key instanceof Date ? 'a timestamp' : `a ${typeof key}`}, not a string or a number`);
  }
}

// Map keys repeat from message to message: short keys are looked up here (by length and first two bytes) instead of decoded each time.
const KEY_CACHE_SIZE = 4096;
const keyCache: Array<{ bytes: Uint8Array; key: string } | undefined> = new Array(KEY_CACHE_SIZE);

function readShortKey(length: number): string {
  if (length > 16) return readString(length);
  need(length);
  const slot = ((length << 5) ^ (length > 1 ? (src[pos] << 8) | src[pos + 1] : length > 0 ? src[pos] : 0)) & (KEY_CACHE_SIZE - 1);
  const cached = keyCache[slot];
  if (cached !== undefined && cached.bytes.length === length) {
    const bytes = cached.bytes;
    let i = 0;
    while (i < length && bytes[i] === src[pos + i]) i++;
    if (i === length) {
      pos += length;
      return cached.key;
    }
  }
  const bytes = Uint8Array.prototype.slice.call(src, pos, pos + length); // a copy: the source buffer may be reused
  const key = readString(length);
  keyCache[slot] = { bytes, key };
  return key;
}

const fromCharCode = String.fromCharCode;
// Buffer's UTF-8 decoding called directly (present in every Node.js, absent from its typings): toString('utf8', start, end)
// ends in it after checking its arguments and looking up the encoding, on every string; its ASCII path needs no scan for high bits first
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice: (this: Buffer, start: number, end: number) => string }).utf8Slice;

function readString(length: number): string {
  need(length);
  const start = pos;
  pos += length;
  if (length < 4) {
    // the shortest strings (ids, enums) without leaving JavaScript
    if (length === 0) return '';
    const a = src[start];
    if (length === 1) return a < 0x80 ? fromCharCode(a) : utf8Slice.call(src, start, pos);
    const b = src[start + 1];
    if (length === 2) return (a | b) < 0x80 ? fromCharCode(a, b) : utf8Slice.call(src, start, pos);
    const c = src[start + 2];
    return (a | b | c) < 0x80 ? fromCharCode(a, b, c) : utf8Slice.call(src, start, pos);
  }
  return utf8Slice.call(src, start, pos);
}

function readBin(length: number): Buffer {
  need(length);
  const bytes = src.subarray(pos, pos + length);
  pos += length;
  return bytes;
}

function readExt(length: number): unknown {
  need(1 + length);
  const type = view.getInt8(pos);
  const start = pos + 1;
  pos = start + length;
  if (type === -1) return readTimestamp(start, length);
  if (type === 0 && length === 1) return undefined;
  if (type === 0x42 && length > 0) return readBigInt(start, length);
  throw new Error(`extension type ${type} (${length} bytes) is not understood`);
}

function readTimestamp(start: number, length: number): Date {
  if (length === 4) return new Date(view.getUint32(start) * 1000);
  if (length === 8) {
    const high = view.getUint32(start);
    const nanoseconds = high >>> 2;
    const seconds = (high & 0x3) * 0x100000000 + view.getUint32(start + 4);
    return new Date(seconds * 1000 + nanoseconds / 1e6);
  }
  if (length === 12) {
    const nanoseconds = view.getUint32(start);
    const seconds = Number(view.getBigInt64(start + 4));
    return new Date(seconds * 1000 + nanoseconds / 1e6);
  }
  throw new Error(`a timestamp of ${length} bytes (expected 4, 8 or 12)`);
}

function readBigInt(start: number, length: number): bigint {
  // one parse of the hex text: linear in the length, where shifting byte by byte would be quadratic
  const magnitude = BigInt(`0x${src.toString('hex', start, start + length)}`);
  return src[start] >= 0x80 ? magnitude - (1n << BigInt(8 * length)) : magnitude;
}
