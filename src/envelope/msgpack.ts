/**
 * A strict MessagePack decoder for bytes received from other processes.
 *
 * It reads exactly what the MessagePack specification says and nothing more:
 * every positive fixint (0x00-0x7f) is an integer, whatever came before it;
 * nothing in one input changes how another decodes (what is kept between
 * calls, the cache of map keys and the map shapes below, changes only how
 * fast, never what); nothing decoded refers to something else decoded, so the
 * result is a tree with at most one node per byte received and decoding is
 * linear in the input's length. Three extension types are understood, all
 * other extension types are refused:
 *
 * - `-1`, the specification's timestamp: a `Date`, refused when its
 *   nanoseconds exceed 999,999,999 or its time lies beyond a Date's range
 *   (never an Invalid Date);
 * - `0` with the one data byte `00`: `undefined` (what msgpackr writes for it);
 * - `0x42`: a big-endian two's-complement integer of any length (none is 0),
 *   as a `bigint` (what msgpackr writes for a bigint beyond 64 bits).
 *
 * Strings must be UTF-8: bytes that are not are refused, never replaced (two
 * keys would merge). Maps become plain objects: keys that are strings stay,
 * integer, float, boolean and nil keys become their decimal text, other keys
 * are refused; a `__proto__` key is renamed `__proto_` so that no input can
 * set a prototype, and a map holding both is refused (the rename would merge them).
 * The 64-bit integer formats (uint64 0xcf, int64 0xd3) always become
 * bigints, whatever their value: exact, and a JavaScript bigint (which
 * msgpackr writes in them) comes back a bigint; every other integer and
 * float format becomes a number (msgpackr writes numbers beyond 32 bits as
 * float64).
 */

/** How deep arrays and maps may nest; deeper input is refused (not a stack overflow). */
export const MAX_DEPTH = 512;

import { isUtf8 } from 'node:buffer';

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
  top = 0;
  try {
    if (end === 0) throw new Error('no data');
    const value = read(0);
    if (pos !== end) throw new Error(`${end - pos} bytes after the end of the value`);
    return value;
  } finally {
    src = EMPTY;
    view = EMPTY_VIEW;
    if (scratchUsed > 0) {
      scratchValues.fill(undefined, 0, scratchUsed);
      scratchUsed = 0;
    }
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

// Map shapes: key orders seen often, each with its keys' bytes and a function that creates its objects. The generic path
// decodes every key (a key cache lookup and a byte comparison) and stores each entry with `object[key] = value`, one
// call site for every key of every map, which V8 can only run generically, growing the object one property at a time.
// A map whose bytes carry a shape's keys in its order is read by comparing those bytes, four at a time, with the values
// put aside, then created by an object literal of the shape's keys (generated code: the only way to have a literal per
// key order), which allocates the object with its final layout. Shapes change only speed: the literal defines the same
// properties in the same order as the generic path's stores (key orders it would not, below, are never compiled), and a
// map whose keys differ from every shape of its set at some entry continues on the generic path from there.
//
// What a sender can make this cost is bounded: at most SHAPE_SETS * SHAPE_WAYS shapes of SHAPE_MAX_KEYS keys of at most 16 bytes
// are held, a key order is compiled only after SHAPE_COMPILE_AFTER maps of it, and at most once per SHAPE_COMPILE_COST
// maps read generically; a map on the generic path pays a hash of its keys (already looked up) on top.

/** Most entries a map may have for its key order to be cached (larger maps are rare on the wire, and cost more to compile). */
const SHAPE_MAX_KEYS = 16;
/** Sets of shapes (a power of two), chosen by a map's entry count and the first bytes of its first key. */
const SHAPE_SETS = 64;
const SHAPE_SET_SHIFT = 32 - Math.log2(SHAPE_SETS);
/** Shapes per set: key orders that share an entry count and a first key (two event payloads `{id, ...}`) each keep theirs. */
const SHAPE_WAYS = 4;
/** Key orders counted towards compilation (a power of two), by a hash of their keys. */
const PENDING_SLOTS = 1024;
const PENDING_SHIFT = 32 - Math.log2(PENDING_SLOTS);
/** Times a key order must be seen (without another taking its counter) before it is compiled: one-off maps never are. */
const SHAPE_COMPILE_AFTER = 4;
/**
 * What a compilation costs, in maps read generically: each such map earns one token, a compilation spends this many. A
 * sender of endless new key orders makes the decoder compile at most once per this many maps it sends (beyond the
 * first SHAPE_COMPILE_BURST), so compiling (tens of microseconds) stays a bounded share of decoding whatever arrives.
 */
const SHAPE_COMPILE_COST = 4096;
/** Compilations that may run at once before tokens run out: a new process compiles its first key orders without waiting. */
const SHAPE_COMPILE_BURST = 16;
/** What `keySlot` holds after a key that the key cache does not hold (long, or not a string): its map is not cached. */
const UNCACHEABLE_KEY = -1;

interface Shape {
  /** The key order, `__proto__` already renamed. */
  readonly keys: string[];
  /** Each key's slot in the key cache, as `keySlot` reports it: the hash of a key order is made of them. */
  readonly keySlots: Int32Array;
  /** Every key as it arrives (fixstr header and UTF-8), one after the other; key `i` is `keyBytes[ends[i - 1] .. ends[i])`. */
  readonly keyBytes: Uint8Array;
  readonly ends: Int32Array;
  /** The same bytes as little-endian 32-bit words, each key starting a word; key `i` is `words[wordEnds[i - 1] .. wordEnds[i])`. */
  readonly words: Int32Array;
  /** Per word, the bits that belong to the key (a key's last word may be partial). */
  readonly masks: Int32Array;
  readonly wordEnds: Int32Array;
  /** Creates the object from `values[base]` to `values[base + keys.length - 1]`. */
  readonly build: (values: unknown[], base: number) => Record<string, unknown>;
  /** `mapCount` when a map last matched it: the least recently used of a full set makes room. */
  used: number;
}

const shapes: Array<Shape | undefined> = new Array<Shape | undefined>(SHAPE_SETS * SHAPE_WAYS).fill(undefined);
/** Per pending slot, the hash of the key order counted there, and how many maps of it came since it took the slot. */
const pendingHash = new Int32Array(PENDING_SLOTS);
const pendingHits = new Uint8Array(PENDING_SLOTS);
let mapCount = 0;
let compileTokens = SHAPE_COMPILE_COST * SHAPE_COMPILE_BURST;
let compilations = 0;
/** False once code generation failed (`--disallow-code-generation-from-strings`, a CSP): every map takes the generic path. */
let shapesOn = true;
/** The key cache slot of the key `readKey` returned last, or UNCACHEABLE_KEY. */
let keySlot = 0;
// The entries of the maps being read, innermost last: at most SHAPE_MAX_KEYS per level of nesting.
const scratchKeys: string[] = new Array<string>(SHAPE_MAX_KEYS * (MAX_DEPTH + 1)).fill('');
const scratchValues: unknown[] = new Array<unknown>(SHAPE_MAX_KEYS * (MAX_DEPTH + 1)).fill(undefined);
let top = 0;
/** How far this input has used `scratchValues`: cleared after it, so that no decoded value outlives its input there. */
let scratchUsed = 0;

/** @internal For tests: the key orders held compiled now (at most SHAPE_SETS * SHAPE_WAYS), compilations since the process started, and whether maps may use them. */
export function mapShapeStats(): { held: number; compilations: number; enabled: boolean } {
  return { held: shapes.filter((shape) => shape !== undefined).length, compilations, enabled: shapesOn };
}

/** @internal For tests: forgets every shape and count, as in a new process (compilations go on counting). */
export function resetMapShapes(): void {
  shapes.fill(undefined);
  pendingHash.fill(0);
  pendingHits.fill(0);
  compileTokens = SHAPE_COMPILE_COST * SHAPE_COMPILE_BURST;
}

/** @internal For tests: `false` reads every map generically (as when code generation is refused), `true` uses the shapes again. */
export function setMapShapes(on: boolean): void {
  shapesOn = on;
}

function readMap(size: number, depth: number): Record<string, unknown> {
  if (size * 2 > end - pos) throw new Error(`map of ${size} entries in ${end - pos} bytes`);
  if (depth >= MAX_DEPTH) throw new Error(`nested deeper than ${MAX_DEPTH} levels`);
  if (size > SHAPE_MAX_KEYS || size === 0 || !shapesOn) return readEntries({}, 0, size, depth);
  const base = top;
  top += size;
  if (top > scratchUsed) scratchUsed = top;
  mapCount++;
  // the set: the entry count and the first key's first bytes (two bytes at least remain, four with two entries: checked above)
  const set = (Math.imul(size ^ (src[pos] << 4) ^ (src[pos + 1] << 12) ^ (size > 1 ? src[pos + 2] << 20 : 0), 0x9e3779b1) >>> SHAPE_SET_SHIFT) * SHAPE_WAYS;
  // each shape of the set whose keys begin as those already read continues from there
  let matched = 0;
  let prefix: Shape | undefined;
  for (let way = set; way < set + SHAPE_WAYS; way++) {
    const shape = shapes[way];
    if (shape === undefined || shape.keys.length !== size || (prefix !== undefined && !samePrefix(shape, prefix, matched))) continue;
    matched = readShapeEntries(shape, matched, base, depth);
    if (matched === size) {
      top = base;
      shape.used = mapCount;
      return shape.build(scratchValues, base);
    }
    if (matched > 0) prefix = shape;
  }
  // no shape of this key order: the entries read so far, then the rest as any map; the key order is hashed and counted
  const object: Record<string, unknown> = {};
  let hash = size;
  if (prefix !== undefined) {
    const { keys, keySlots } = prefix;
    for (let i = 0; i < matched; i++) {
      hash = Math.imul(hash ^ keySlots[i], 0x9e3779b1);
      scratchKeys[base + i] = keys[i];
      object[keys[i]] = scratchValues[base + i];
    }
  }
  let cacheable = true;
  for (let i = matched; i < size; i++) {
    let key = readKey(depth + 1);
    if (key === '__proto__' || key === '__proto_') key = protoKey(object);
    if (keySlot === UNCACHEABLE_KEY) cacheable = false;
    hash = Math.imul(hash ^ keySlot, 0x9e3779b1);
    scratchKeys[base + i] = key;
    object[key] = read(depth + 1);
  }
  top = base;
  if (compileTokens < SHAPE_COMPILE_COST * SHAPE_COMPILE_BURST) compileTokens++;
  if (!cacheable) return object;
  const counter = hash >>> PENDING_SHIFT;
  if (pendingHash[counter] !== hash) {
    pendingHash[counter] = hash;
    pendingHits[counter] = 1;
  } else if (++pendingHits[counter] >= SHAPE_COMPILE_AFTER && compileTokens >= SHAPE_COMPILE_COST) {
    pendingHits[counter] = 0;
    compileTokens -= SHAPE_COMPILE_COST;
    compileShape(set, scratchKeys.slice(base, base + size));
  }
  return object;
}

function samePrefix(shape: Shape, other: Shape, count: number): boolean {
  for (let i = 0; i < count; i++) if (shape.keys[i] !== other.keys[i]) return false;
  return true;
}

/**
 * Reads the entries of a map from entry `first` while its keys are the shape's, each value onto the scratch stack from
 * `base`; returns how many entries are read then (the shape's key count when all matched). The next key is unread.
 */
function readShapeEntries(shape: Shape, first: number, base: number, depth: number): number {
  const { keyBytes, ends, words, masks, wordEnds } = shape;
  const size = ends.length;
  let from = first === 0 ? 0 : ends[first - 1];
  let w = first === 0 ? 0 : wordEnds[first - 1];
  for (let i = first; i < size; i++) {
    const to = ends[i];
    const length = to - from;
    const wordEnd = wordEnds[i];
    if (pos + ((wordEnd - w) << 2) <= end) {
      // four bytes at a time, the bytes past the key masked off
      for (let at = pos; w < wordEnd; w++, at += 4) if ((view.getInt32(at, true) & masks[w]) !== words[w]) return i;
    } else {
      // the last bytes of the input: byte by byte
      if (length > end - pos) return i;
      for (let j = 0; j < length; j++) if (keyBytes[from + j] !== src[pos + j]) return i;
      w = wordEnd;
    }
    pos += length;
    from = to;
    scratchValues[base + i] = read(depth + 1);
  }
  return size;
}

function readEntries(object: Record<string, unknown>, from: number, size: number, depth: number): Record<string, unknown> {
  for (let i = from; i < size; i++) {
    let key = readKey(depth + 1);
    if (key === '__proto__' || key === '__proto_') key = protoKey(object);
    object[key] = read(depth + 1);
  }
  return object;
}

/** `__proto_` for `__proto__` (no input sets a prototype); throws when the map already holds `__proto_` (from either key): the two would merge. */
function protoKey(object: Record<string, unknown>): string {
  if (Object.prototype.hasOwnProperty.call(object, '__proto_')) throw new Error('a map holds both __proto__ and __proto_ (a receiver renames __proto__ to __proto_) or one of them twice');
  return '__proto_';
}

function compileShape(set: number, keys: string[]): void {
  // a key Object.prototype holds would be assigned through the prototype chain by the generic path (a setter, a frozen
  // property) but defined by a literal; `__proto__` in a literal would set the prototype: such orders stay generic
  for (const key of keys) if (key in Object.prototype) return;
  const encoded = keys.map((key) => Buffer.from(key, 'utf8'));
  // matching compares bytes with each key's fixstr encoding: it must be one (a key that arrived with a longer header, or
  // a number key, never matches its fixstr bytes: its maps stay on the generic path; invalid UTF-8 never decodes)
  if (encoded.some((bytes) => bytes.length > 31)) return;
  const ends = new Int32Array(keys.length);
  let total = 0;
  for (let i = 0; i < keys.length; i++) ends[i] = total += 1 + encoded[i].length;
  const keyBytes = new Uint8Array(total);
  for (let i = 0, at = 0; i < keys.length; i++) {
    keyBytes[at] = 0xa0 | encoded[i].length;
    keyBytes.set(encoded[i], at + 1);
    at = ends[i];
  }
  const words: number[] = [];
  const masks: number[] = [];
  const wordEnds = new Int32Array(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const bytes = keyBytes.subarray(i === 0 ? 0 : ends[i - 1], ends[i]);
    for (let k = 0; k < bytes.length; k += 4) {
      let word = 0;
      let mask = 0;
      for (let b = 0; b < 4 && k + b < bytes.length; b++) {
        word |= bytes[k + b] << (8 * b);
        mask |= 0xff << (8 * b);
      }
      words.push(word);
      masks.push(mask);
    }
    wordEnds[i] = words.length;
  }
  // keys as JSON string literals: any text is a valid, inert JavaScript string literal
  const body = `return {${keys.map((key, i) => `${JSON.stringify(key)}: v[b + ${i}]`).join(', ')}};`;
  let build: Shape['build'];
  try {
    build = new Function('v', 'b', body) as Shape['build'];
  } catch {
    shapesOn = false;
    return;
  }
  compilations++;
  // an empty way of the set, or the one least recently used
  let way = set;
  for (let candidate = set; candidate < set + SHAPE_WAYS; candidate++) {
    const held = shapes[candidate];
    if (held === undefined) {
      way = candidate;
      break;
    }
    if (held.used < (shapes[way] as Shape).used) way = candidate;
  }
  const keySlots = Int32Array.from(encoded, (bytes) => keyCacheSlot(bytes, 0, bytes.length));
  shapes[way] = { keys, keySlots, keyBytes, ends, words: Int32Array.from(words), masks: Int32Array.from(masks), wordEnds, build, used: mapCount };
}

function readKey(depth: number): string {
  if (pos >= end) throw new Error('unexpected end of data');
  const token = src[pos];
  if (token >= 0xa0 && token < 0xc0) {
    pos++;
    return readShortKey(token - 0xa0);
  }
  keySlot = UNCACHEABLE_KEY;
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

/** Where the key of `length` bytes at `at` is looked up in the key cache: by its length and first two bytes. */
function keyCacheSlot(bytes: Uint8Array, at: number, length: number): number {
  return ((length << 5) ^ (length > 1 ? (bytes[at] << 8) | bytes[at + 1] : length > 0 ? bytes[at] : 0)) & (KEY_CACHE_SIZE - 1);
}

function readShortKey(length: number): string {
  if (length > 16) {
    keySlot = UNCACHEABLE_KEY;
    return readString(length);
  }
  need(length);
  const slot = keyCacheSlot(src, pos, length);
  keySlot = slot;
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
    if (length === 1) return a < 0x80 ? fromCharCode(a) : readUtf8(start, pos);
    const b = src[start + 1];
    if (length === 2) return (a | b) < 0x80 ? fromCharCode(a, b) : readUtf8(start, pos);
    const c = src[start + 2];
    return (a | b | c) < 0x80 ? fromCharCode(a, b, c) : readUtf8(start, pos);
  }
  if (length <= SHORT_STRING_MAX) return readShortString(start, length);
  return readUtf8(start, pos);
}

/**
 * The text of UTF-8 bytes; throws on bytes that are not UTF-8. Node replaces
 * each invalid sequence with U+FFFD: only a text holding one (rare) has its
 * bytes checked, to tell a U+FFFD sent from one made up.
 */
function readUtf8(start: number, stop: number): string {
  const text = utf8Slice.call(src, start, stop);
  if (text.indexOf('\ufffd') !== -1 && !isUtf8(src.subarray(start, stop))) throw new Error(`a string of ${stop - start} bytes at offset ${start} is not UTF-8`);
  return text;
}

/** Longest string read in JavaScript: `utf8Slice` costs a fixed call into C++ that one `fromCharCode` of this many bytes undercuts. */
const SHORT_STRING_MAX = 15;

function readShortString(s: number, length: number): string {
  const b = src;
  let bits = 0;
  for (let i = s; i < s + length; i++) bits |= b[i];
  if (bits >= 0x80) return readUtf8(s, s + length);
  // one call of fixed arity per length: a loop or `apply` builds the string slower than the C++ call
  switch (length) {
    case 4:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3]);
    case 5:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4]);
    case 6:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5]);
    case 7:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6]);
    case 8:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7]);
    case 9:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8]);
    case 10:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9]);
    case 11:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10]);
    case 12:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11]);
    case 13:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11], b[s + 12]);
    case 14:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11], b[s + 12], b[s + 13]);
    default:
      return fromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11], b[s + 12], b[s + 13], b[s + 14]);
  }
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
  if (type === 0 && length === 1 && src[start] === 0) return undefined;
  if (type === 0x42) return readBigInt(start, length);
  throw new Error(`extension type ${type} (${length} bytes${length === 1 ? `: ${src[start]}` : ''}) is not understood`);
}

function readTimestamp(start: number, length: number): Date {
  if (length === 4) return new Date(view.getUint32(start) * 1000);
  let nanoseconds: number;
  let seconds: number;
  if (length === 8) {
    const high = view.getUint32(start);
    nanoseconds = high >>> 2;
    seconds = (high & 0x3) * 0x100000000 + view.getUint32(start + 4);
  } else if (length === 12) {
    nanoseconds = view.getUint32(start);
    seconds = Number(view.getBigInt64(start + 4));
  } else throw new Error(`a timestamp of ${length} bytes (expected 4, 8 or 12)`);
  if (nanoseconds > 999_999_999) throw new Error(`a timestamp with ${nanoseconds} nanoseconds (at most 999999999)`);
  const date = new Date(seconds * 1000 + nanoseconds / 1e6);
  // beyond ±8.64e15 ms a Date is Invalid: refused, so that nothing decoded is a Date no encoder can write back
  if (Number.isNaN(date.getTime())) throw new Error(`a timestamp of ${seconds} seconds, beyond the range of a JavaScript Date`);
  return date;
}

function readBigInt(start: number, length: number): bigint {
  if (length === 0) return 0n;
  // one parse of the hex text: linear in the length, where shifting byte by byte would be quadratic
  const magnitude = BigInt(`0x${src.toString('hex', start, start + length)}`);
  return src[start] >= 0x80 ? magnitude - (1n << BigInt(8 * length)) : magnitude;
}
