import type { Packr } from 'msgpackr';

/** Node's UTF-8 writer without the argument checks of `Buffer#write` (msgpackr uses it too). */
const utf8Write = (Buffer.prototype as unknown as { utf8Write: (this: Buffer, text: string, offset: number, length: number) => number }).utf8Write;

const hasOwnProperty = Object.prototype.hasOwnProperty;

/** `String.prototype.isWellFormed` (Node.js 20; not in the ES2022 typings): false for a string holding a lone surrogate. */
export const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean }).isWellFormed;

/**
 * Read through `call`, not as `text.charCodeAt`: strings reach the encoder in
 * many representations (flat, cons, sliced, internalized...), and with more
 * of them than an inline cache holds, the optimised loop looked the method up
 * through V8's generic load for every character.
 */
const charCodeAt = String.prototype.charCodeAt;

/** Keys longer than this are encoded each time instead of remembered. */
const MAX_REMEMBERED_KEY_LENGTH = 64;
/** How many encoded keys are remembered; past it the memory starts again empty (keys come from the application's own types). */
const MAX_REMEMBERED_KEYS = 4096;
/** The size of a fresh slab the encoded values are cut from, at first. */
const SLAB_BYTES = 64 * 1024;
/**
 * The most a fresh slab grows to: once a value is written, the next slabs
 * hold four values of its size, up to this, so that frames of tens or
 * hundreds of kilobytes (64 calls of 1 KB, bursts of 1 KB events) share a
 * slab instead of each taking one or two, copied from a slab it outgrew.
 */
const MAX_SLAB_BYTES = 1024 * 1024;
/** What a slab holds beyond four values of the largest size: their alignment, and the least room a value starts a slab with. */
const SLAB_SLACK = 4096;

/**
 * Plain MessagePack for the values intracom sends most: plain objects,
 * arrays, strings, numbers, booleans and null, written in one walk into a
 * shared slab, with the encoded bytes of each map key remembered (a
 * message's keys repeat from one message to the next), and maps and arrays
 * given their smallest header. Anything else (a Buffer, a Date, a bigint,
 * undefined, a Map, a class instance...) is written by msgpackr, so every
 * value decodes exactly as msgpackr's own encoding of it would; only the
 * bytes of map headers (msgpackr writes map16 for every object) and of
 * strings with a lone surrogate (written as U+FFFD, which every UTF-8
 * decoder reads, where msgpackr writes bytes that are not UTF-8) differ.
 * Each call returns a view of the slab that stays valid: the next value is
 * written past it.
 */
export class PlainEncoder {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private view = new DataView(this.slab.buffer, this.slab.byteOffset, this.slab.byteLength);
  private start = 0;
  private pos = 0;
  /** The size of the next fresh slab: four times the largest value written and SLAB_SLACK, at least SLAB_BYTES, at most MAX_SLAB_BYTES. */
  private slabBytes = SLAB_BYTES;
  private readonly keys = new Map<string, Buffer>();

  constructor(
    /** Writes what the fast path does not (with msgpackr's own options). */
    private readonly fallback: Packr,
  ) {}

  /** The MessagePack bytes of `value`. */
  encode(value: unknown): Buffer {
    this.pos = this.start;
    if (this.slab.length - this.start < 1024) this.renew(0);
    try {
      this.write(value);
    } catch (error) {
      this.pos = this.start;
      throw error;
    }
    const bytes = this.slab.subarray(this.start, this.pos);
    const wanted = 4 * bytes.length + SLAB_SLACK;
    if (wanted > this.slabBytes) this.slabBytes = Math.min(MAX_SLAB_BYTES, wanted);
    this.start = (this.pos + 7) & ~7;
    return bytes;
  }

  /** A fresh slab for the value being written, with its `keep` bytes written so far carried over. */
  private renew(need: number): void {
    const keep = this.pos - this.start;
    const fresh = Buffer.allocUnsafeSlow(Math.max(this.slabBytes, 2 * (keep + need)));
    if (keep > 0) this.slab.copy(fresh, 0, this.start, this.pos);
    this.slab = fresh;
    this.view = new DataView(fresh.buffer, fresh.byteOffset, fresh.byteLength);
    this.start = 0;
    this.pos = keep;
  }

  private room(bytes: number): void {
    if (this.pos + bytes > this.slab.length) this.renew(bytes);
  }

  private write(value: unknown): void {
    switch (typeof value) {
      case 'string':
        return this.writeString(value);
      case 'number':
        return this.writeNumber(value);
      case 'boolean':
        this.room(1);
        this.slab[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case 'object':
        if (value === null) {
          this.room(1);
          this.slab[this.pos++] = 0xc0;
          return;
        }
        if ((value as object).constructor === Object) return this.writeMap(value as Record<string, unknown>);
        if ((value as object).constructor === Array) return this.writeArray(value as unknown[]);
        return this.writeOther(value);
      default:
        return this.writeOther(value);
    }
  }

  private writeOther(value: unknown): void {
    const bytes = this.fallback.pack(value);
    this.room(bytes.length);
    this.slab.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  private writeHeader(length: number, fix: number, short: number): void {
    this.room(5);
    this.pos = this.headerAt(this.pos, length, fix, short);
  }

  /** Writes the header of a map or array of `length` at `at` (room checked by the caller); returns where its entries start. */
  private headerAt(at: number, length: number, fix: number, short: number): number {
    const slab = this.slab;
    if (length < 16) {
      slab[at] = fix | length;
      return at + 1;
    }
    if (length < 0x10000) {
      slab[at] = short;
      slab[at + 1] = length >> 8;
      slab[at + 2] = length & 0xff;
      return at + 3;
    }
    slab[at] = short + 1;
    this.view.setUint32(at + 1, length);
    return at + 5;
  }

  private writeArray(array: unknown[]): void {
    const length = array.length;
    this.writeHeader(length, 0x90, 0xdc);
    for (let i = 0; i < length; i++) this.write(array[i]);
  }

  private writeMap(object: Record<string, unknown>): void {
    this.room(1);
    // relative to the value's start: a nested write may move the value to a fresh slab
    const header = this.pos++ - this.start;
    let length = 0;
    for (const key in object) {
      if (!hasOwnProperty.call(object, key)) continue;
      this.writeKey(key);
      this.write(object[key]);
      length++;
    }
    if (length >= 16) {
      // the one byte reserved is too few: the entries move up by the header's other bytes (after room(), which may move the value)
      const extra = length < 0x10000 ? 2 : 4;
      this.room(extra);
      const entries = this.start + header + 1;
      this.slab.copyWithin(entries + extra, entries, this.pos);
      this.pos += extra;
    }
    this.headerAt(this.start + header, length, 0x80, 0xde);
  }

  private writeKey(key: string): void {
    let bytes = this.keys.get(key);
    if (bytes === undefined) {
      // checked once per key remembered: two keys with a lone surrogate would both be written as U+FFFD and merge
      if (!isWellFormed.call(key)) throw new Error(`the key ${JSON.stringify(key)} holds a lone surrogate (half of a UTF-16 pair), which would be sent as U+FFFD and could merge with another key`);
      if (key.length > MAX_REMEMBERED_KEY_LENGTH) return this.writeString(key);
      const at = this.pos;
      this.writeString(key);
      bytes = Buffer.from(this.slab.subarray(at, this.pos));
      if (this.keys.size >= MAX_REMEMBERED_KEYS) this.keys.clear();
      this.keys.set(key, bytes);
      return;
    }
    const length = bytes.length;
    this.room(length);
    const slab = this.slab;
    let pos = this.pos;
    for (let i = 0; i < length; i++) slab[pos++] = bytes[i];
    this.pos = pos;
  }

  private writeString(text: string): void {
    const length = text.length;
    if (length < 32) {
      this.room(1 + length);
      const slab = this.slab;
      const at = this.pos + 1;
      let i = 0;
      for (; i < length; i++) {
        const code = charCodeAt.call(text, i);
        if (code >= 0x80) break;
        slab[at + i] = code;
      }
      if (i === length) {
        slab[this.pos] = 0xa0 | length;
        this.pos = at + length;
        return;
      }
    }
    const most = length * 3;
    const header = most < 32 ? 1 : most < 0x100 ? 2 : most < 0x10000 ? 3 : 5;
    this.room(header + most);
    const slab = this.slab;
    const at = this.pos;
    const written = utf8Write.call(slab, text, at + header, most);
    if (header === 1) slab[at] = 0xa0 | written;
    else if (header === 2) {
      slab[at] = 0xd9;
      slab[at + 1] = written;
    } else if (header === 3) {
      slab[at] = 0xda;
      slab[at + 1] = written >> 8;
      slab[at + 2] = written & 0xff;
    } else {
      slab[at] = 0xdb;
      this.view.setUint32(at + 1, written);
    }
    this.pos = at + header + written;
  }

  /** As msgpackr writes numbers with records off: integers of 32 bits in the smallest integer format, others as float64. */
  private writeNumber(value: number): void {
    this.room(9);
    const slab = this.slab;
    if (value >>> 0 === value) {
      if (value < 0x80) slab[this.pos++] = value;
      else if (value < 0x100) {
        slab[this.pos++] = 0xcc;
        slab[this.pos++] = value;
      } else if (value < 0x10000) {
        slab[this.pos++] = 0xcd;
        slab[this.pos++] = value >> 8;
        slab[this.pos++] = value & 0xff;
      } else {
        slab[this.pos++] = 0xce;
        this.view.setUint32(this.pos, value);
        this.pos += 4;
      }
    } else if (value >> 0 === value) {
      if (value >= -0x20) slab[this.pos++] = 0x100 + value;
      else if (value >= -0x80) {
        slab[this.pos++] = 0xd0;
        slab[this.pos++] = value + 0x100;
      } else if (value >= -0x8000) {
        slab[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, value);
        this.pos += 2;
      } else {
        slab[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, value);
        this.pos += 4;
      }
    } else {
      slab[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, value);
      this.pos += 8;
    }
  }
}
