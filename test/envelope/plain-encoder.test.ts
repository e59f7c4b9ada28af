/**
 * The default codec's encoder (src/envelope/PlainEncoder.ts) writes plain
 * objects, arrays, strings, numbers, booleans and null itself and leaves
 * the rest to msgpackr: whatever it writes must decode (with the strict
 * decoder every receiver uses) exactly as msgpackr's own encoding does, and
 * every buffer it returned must stay intact while it writes more.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { MsgpackCodec } from '../../src/envelope/codec';
import { decodeMsgpack } from '../../src/envelope/msgpack';
import { PlainEncoder } from '../../src/envelope/PlainEncoder';

const packr = new Packr({ useRecords: false, useBigIntExtension: true, moreTypes: false });

/** Strings without lone surrogates (msgpackr writes those as bytes that are not UTF-8, see below). */
const text = fc.string({ unit: 'grapheme', maxLength: 80 });
const scalar = fc.oneof(
  text,
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')),
  fc.integer(),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.double(),
  fc.constantFrom(0, -0, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129, -32768, -32769, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 53, NaN, Infinity, -Infinity),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
);
const value = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small' }, scalar, tie('array'), tie('object')),
  array: fc.array(tie('tree'), { maxLength: 20 }),
  object: fc.dictionary(fc.oneof(text, fc.constantFrom('i', 't', 'name', 'queryId', 'result', '__proto__')), tie('tree'), { maxKeys: 20 }),
})).tree;

describe('PlainEncoder (the default codec encoder)', () => {
  it('every value decodes as msgpackr encoding of it decodes (fast-check)', () => {
    const encoder = new PlainEncoder(packr);
    fc.assert(
      fc.property(value, (v) => {
        expect(decodeMsgpack(encoder.encode(v))).to.deep.equal(decodeMsgpack(packr.pack(v)));
      }),
      { numRuns: 2000 },
    );
  });

  it('the buffers it returned stay intact while it writes more (slabs shared, renewed, values larger than a slab)', () => {
    const encoder = new PlainEncoder(packr);
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { arbitrary: value, weight: 8 },
            fc.tuple(fc.integer({ min: 30_000, max: 140_000 }), text).map(([n, tail]) => 'é'.repeat(n) + tail),
            fc.integer({ min: 10_000, max: 40_000 }).map((n) => Array.from({ length: n }, (_, i) => i * 7)),
          ),
          { minLength: 50, maxLength: 200 },
        ),
        (values) => {
        const written = values.map((v) => encoder.encode(v));
        values.forEach((v, i) => expect(decodeMsgpack(written[i])).to.deep.equal(decodeMsgpack(packr.pack(v))));
        },
      ),
      { numRuns: 20 },
    );
  });

  it('writes a run of large values (bursts of 1 KB events) into slabs of several values each, not a slab or more per value', () => {
    const encoder = new PlainEncoder(packr);
    const burst = (k: number) => [5, { headers: { name: 'events' }, payloads: Array.from({ length: 200 }, (_, i) => ({ i: k * 200 + i, name: 'x'.repeat(1000) })) }];
    encoder.encode(burst(0));
    const allocate = Buffer.allocUnsafeSlow;
    let slabs = 0;
    Buffer.allocUnsafeSlow = (size: number) => {
      slabs += 1;
      return allocate(size);
    };
    let written: Buffer[];
    try {
      written = Array.from({ length: 40 }, (_, k) => encoder.encode(burst(k + 1)));
    } finally {
      Buffer.allocUnsafeSlow = allocate;
    }
    // about 205 KB each: 40 values took 40 slabs when slabs grew only by what a value had written when it outgrew one, 88 before slabs grew
    expect(slabs).to.be.at.most(15);
    written.forEach((bytes, k) => expect(decodeMsgpack(bytes)).to.deep.equal(burst(k + 1)));
  });

  it('uses the smallest headers (fixmap, fixarray, fixstr) and remembers no more than 4,096 keys', () => {
    const encoder = new PlainEncoder(packr);
    expect([...encoder.encode({ a: [1, 'x'] })]).to.deep.equal([0x81, 0xa1, 0x61, 0x92, 0x01, 0xa1, 0x78]);
    const many: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) many[`key${i}`] = i;
    for (let round = 0; round < 3; round++) expect(decodeMsgpack(encoder.encode(many))).to.deep.equal(many);
  });

  it('writes the header of a map after its entries: 15, 16, 65,535 and 65,536 keys, and a map that moves to a fresh slab while written', () => {
    const encoder = new PlainEncoder(packr);
    const withKeys = (count: number, value: (i: number) => unknown = (i) => i): Record<string, unknown> => {
      const object: Record<string, unknown> = {};
      for (let i = 0; i < count; i++) object[`k${i}`] = value(i);
      return object;
    };
    const heads: Array<[number, number[]]> = [
      [15, [0x8f]],
      [16, [0xde, 0x00, 0x10]],
      [65_535, [0xde, 0xff, 0xff]],
      [65_536, [0xdf, 0x00, 0x01, 0x00, 0x00]],
    ];
    for (const [count, head] of heads) {
      const object = withKeys(count);
      const bytes = encoder.encode({ before: 1, inner: object, after: 'x' });
      expect(decodeMsgpack(bytes)).to.deep.equal({ before: 1, inner: object, after: 'x' });
      const at = bytes.indexOf(Buffer.from('inner')) + 5;
      expect([...bytes.subarray(at, at + head.length)], `${count} keys`).to.deep.equal(head);
    }
    // 20 keys of 8 KiB strings: the slab (64 KiB, a fresh encoder's) is renewed in the middle of the map, after its header was reserved
    const fresh = new PlainEncoder(packr);
    for (let round = 0; round < 4; round++) {
      const big = withKeys(20, (i) => String.fromCharCode(97 + i).repeat(8192));
      expect(decodeMsgpack(fresh.encode([round, big]))).to.deep.equal([round, big]);
    }
  });

  it('lets values larger than its first slab share the slabs that follow, every earlier value left intact', () => {
    const encoder = new PlainEncoder(packr);
    // about 70 KB each, as a frame of 64 calls of 1 KB: the first outgrows the 64 KiB slab
    const values = Array.from({ length: 8 }, (_, round) => Array.from({ length: 64 }, (_, i) => ({ round, i, name: String.fromCharCode(97 + ((round + i) % 26)).repeat(1000) })));
    const encoded = values.map((value) => encoder.encode(value));
    const slabs = new Set(encoded.map((bytes) => bytes.buffer));
    // eight values in at most four slabs (with slabs only twice the value that outgrew one, each took its own)
    expect(slabs.size).to.be.at.most(4);
    encoded.forEach((bytes, i) => expect(decodeMsgpack(bytes)).to.deep.equal(values[i]));
  });

  it('sends own properties only, as before: an enumerable property added to Object.prototype is not sent', () => {
    const encoder = new PlainEncoder(packr);
    const prototype = Object.prototype as Record<string, unknown>;
    prototype.polluted = 'inherited';
    try {
      expect(decodeMsgpack(encoder.encode({ a: 1, b: { c: 2 } }))).to.deep.equal({ a: 1, b: { c: 2 } });
    } finally {
      delete prototype.polluted;
    }
  });

  it('writes a lone surrogate in a value as U+FFFD (valid UTF-8 for every reader); refuses a key holding one, which would merge with another', () => {
    const encoder = new PlainEncoder(packr);
    const lone = 'a\uD800b';
    expect(decodeMsgpack(encoder.encode({ key: lone, long: lone.repeat(40) }))).to.deep.equal({ key: 'a\uFFFDb', long: 'a\uFFFDb'.repeat(40) });
    // both would arrive as one key 'a\uFFFDb', the first value lost
    for (const keys of [[lone, 'a\uDC00b'], ['x'.repeat(70) + '\uDFFF']]) {
      expect(() => encoder.encode(Object.fromEntries(keys.map((key, i) => [key, i]))), JSON.stringify(keys)).to.throw(/holds a lone surrogate/);
      expect(decodeMsgpack(encoder.encode({ a: 1 }))).to.deep.equal({ a: 1 });
    }
  });

  it('a value msgpackr refuses throws, and the encoder goes on with the next value', () => {
    const codec = new MsgpackCodec();
    expect(() => codec.encode({ a: 1, b: Symbol('s') })).to.throw();
    expect(decodeMsgpack(codec.encode({ a: 1 }))).to.deep.equal({ a: 1 });
  });
});
