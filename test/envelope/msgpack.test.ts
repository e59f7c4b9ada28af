import { expect } from 'chai';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, MsgpackCodec, PROTOCOL_VERSION } from '../../src/envelope/codec';
import { decodeMsgpack, MAX_DEPTH } from '../../src/envelope/msgpack';
import { createQuery } from '../../src/envelope/query';
import { QueryType } from '../../src/envelope/types';
import { invalidQueryReason } from '../../src/envelope/validate';

/** Objects and arrays reachable from `value`, each counted once per path; throws on a node reached twice (a shared reference or a cycle). */
function treeSize(value: unknown, seen = new Set<object>()): number {
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value) || value instanceof Date) return 1;
  if (seen.has(value)) throw new Error('a node is reachable twice: the decoded value is not a tree');
  seen.add(value);
  let size = 1;
  for (const item of Object.values(value)) size += treeSize(item, seen);
  return size;
}

describe('the wire codec: plain MessagePack, read strictly', () => {
  const codec = new MsgpackCodec();

  it('decodes every integer a plain writer may send as that integer: 0-255 (0x40-0x7f are fixints, never records) and the 64-bit edges', () => {
    for (let i = 0; i < 256; i++) {
      const bytes = i < 0x80 ? [0x92, PROTOCOL_VERSION, i] : [0x92, PROTOCOL_VERSION, 0xcc, i];
      expect(decodeFrame(codec, Buffer.from(bytes), 100), `integer ${i}`).to.deep.equal([i]);
    }
    const cases: Array<[string, unknown]> = [
      ['e0', -32],
      ['d080', -128],
      ['cdffff', 65535],
      ['d18000', -32768],
      ['ceffffffff', 4294967295],
      ['d280000000', -2147483648],
      ['cf0000018bcfe56800', 1700000000000n], // Python's 1700000000000
      ['cfffffffffffffffff', 2n ** 64n - 1n],
      ['d38000000000000000', -(2n ** 63n)],
      ['d3ffffffffffffffff', -1n],
      ['ca3fc00000', 1.5],
      ['cb3ff8000000000000', 1.5],
    ];
    for (const [hex, value] of cases) expect(decodeMsgpack(Buffer.from(hex, 'hex')), hex).to.equal(value);
  });

  it('keeps no state between inputs: a frame that defined a record slot (0x43) in version 2 changes nothing for the next one', () => {
    const poison = Buffer.from('9202d47243' + '92a178a179' + '0102', 'hex');
    expect(() => decodeFrame(codec, poison, 100)).to.throw(/unsupported frame version 2 \(an older intracom/);
    expect(() => decodeMsgpack(poison)).to.throw(/extension type 114/);
    expect(decodeFrame(codec, Buffer.from([0x94, PROTOCOL_VERSION, 0x43, 0x40, 0x47]), 100)).to.deep.equal([0x43, 0x40, 0x47]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (noise) => {
        try {
          decodeMsgpack(Buffer.from(noise));
        } catch {
          // refused or not: what follows must read the same
        }
        expect(decodeFrame(codec, Buffer.from([0x94, PROTOCOL_VERSION, 0x43, 0x40, 0x81, 0xa1, 0x61, 0x47]), 100)).to.deep.equal([0x43, 0x40, { a: 0x47 }]);
      }),
      { numRuns: 2000 },
    );
  });

  it('builds from any bytes either an error or a tree of at most one node per byte (decoding is linear in the input)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        let decoded: unknown;
        try {
          decoded = decodeMsgpack(Buffer.from(bytes));
        } catch (error) {
          expect(error).to.be.instanceOf(Error);
          return;
        }
        expect(treeSize(decoded)).to.be.at.most(bytes.length);
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses what plain MessagePack cannot express: references, cycles, records, classes', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(() => decodeMsgpack(new Packr({ structuredClone: true }).pack(cyclic))).to.throw(/extension type/);
    // shared references doubling per level: 30 levels of [a, a] are a few bytes and 2^30 paths
    let shared: unknown[] = [1];
    for (let level = 0; level < 30; level++) shared = [shared, shared];
    const blowup = new Packr({ structuredClone: true }).pack(shared);
    expect(blowup.length).to.be.below(1000);
    expect(() => decodeMsgpack(blowup)).to.throw(/extension type/);
    expect(() => decodeMsgpack(new Packr({ useRecords: true }).pack([{ a: 1 }, { a: 2 }]))).to.throw(/extension type 114/);
    expect(() => decodeMsgpack(new Packr({ moreTypes: true }).pack(new Set([1])))).to.throw(/extension type 115/);
    expect(() => decodeMsgpack(Buffer.from('d46500', 'hex'))).to.throw(/extension type 101/);
  });

  it('refuses lies and depth with a reason, not an allocation or a stack overflow', () => {
    expect(() => decodeMsgpack(Buffer.from('ddffffffff', 'hex'))).to.throw(/array of 4294967295 elements in 0 bytes/);
    expect(() => decodeMsgpack(Buffer.from('dfffffffff00', 'hex'))).to.throw(/map of 4294967295 entries/);
    expect(() => decodeMsgpack(Buffer.from('dbffffffff', 'hex'))).to.throw(/unexpected end/);
    expect(() => decodeMsgpack(Buffer.alloc(100_000, 0x91))).to.throw(new RegExp(`deeper than ${MAX_DEPTH}`));
    expect(() => decodeMsgpack(Buffer.from('c1', 'hex'))).to.throw(/byte 0xc1/);
    expect(() => decodeMsgpack(Buffer.from('0101', 'hex'))).to.throw(/1 bytes after the end/);
    expect(() => decodeMsgpack(Buffer.from('8191a0', 'hex'))).to.throw(/map key is an array/);
  });

  it('renames __proto__ and stringifies number keys, as a plain object must', () => {
    const decoded = decodeMsgpack(Buffer.from('83' + 'a95f5f70726f746f5f5f' + '81a17801' + '01' + 'a36f6e65' + 'c3' + 'a474727565', 'hex')) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).to.equal(Object.prototype);
    expect(decoded).to.deep.equal({ __proto_: { x: 1 }, 1: 'one', true: 'true' });
  });

  it('round-trips what intracom sends: numbers, bigint of any size, undefined, Date, Buffer, nested values', () => {
    const value = { n: 1.25, i: -7, large: 2 ** 40, small: 5n, huge: 2n ** 70n, negativeHuge: -(2n ** 70n) - 3n, nothing: undefined, nil: null, at: new Date('2026-01-02T03:04:05.678Z'), bytes: Buffer.from([0, 255]), list: [1, 'two', { three: true }], text: 'héllo ✓' };
    expect(codec.decode(codec.encode(value))).to.deep.equal(value);
    fc.assert(
      fc.property(fc.jsonValue(), fc.bigInt(), (json, big) => {
        const sent = { json, big };
        expect(codec.decode(codec.encode(sent))).to.deep.equal({ json: normalise(json), big });
      }),
      { numRuns: 500 },
    );
  });

  it('reads strings and map keys of any length and alphabet, and a key seen before is not confused with one that shares its length and first bytes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 80 })), { maxLength: 8 }), (pairs) => {
        const value = Object.fromEntries(pairs.map(([k, v]) => [k === '__proto__' ? 'p' : k, v]));
        const bytes = codec.encode(value);
        expect(codec.decode(bytes)).to.deep.equal(value);
        bytes.fill(0x61); // the decoder keeps no view of a buffer the caller may reuse
        expect(codec.decode(codec.encode(value))).to.deep.equal(value);
      }),
      { numRuns: 500 },
    );
    expect(codec.decode(codec.encode([{ abcd: 1 }, { abce: 2 }, { abcd: 3 }, { 'ab\u00e9': 4 }]))).to.deep.equal([{ abcd: 1 }, { abce: 2 }, { abcd: 3 }, { 'ab\u00e9': 4 }]);
  });

  it('decodes the timestamp extension in its three sizes', () => {
    expect(decodeMsgpack(Buffer.from('d6ff65920080', 'hex'))).to.deep.equal(new Date(1704067200 * 1000));
    expect(decodeMsgpack(Buffer.from('d7ff1dcd650065920080', 'hex'))).to.deep.equal(new Date(1704067200 * 1000 + 125));
    expect(decodeMsgpack(Buffer.from('c70cff' + '00000000' + 'ffffffffffffffff', 'hex'))).to.deep.equal(new Date(-1000));
  });

  it('refuses as malformed what the Types table does not carry: timestamps beyond a Date or with 10^9 nanoseconds or more, ext 0 other than d4 00 00; reads ext 0x42 of any length', () => {
    // the edges of a Date's range (±8.64e15 ms) in the 12-byte form: accepted; one second (or one nanosecond) beyond: refused, never an Invalid Date
    const ts12 = (nanoseconds: number, seconds: bigint): Buffer => {
      const bytes = Buffer.alloc(15);
      bytes.set([0xc7, 12, 0xff]);
      bytes.writeUInt32BE(nanoseconds, 3);
      bytes.writeBigInt64BE(seconds, 7);
      return bytes;
    };
    expect(decodeMsgpack(ts12(0, 8_640_000_000_000n))).to.deep.equal(new Date(8.64e15));
    expect(decodeMsgpack(ts12(0, -8_640_000_000_000n))).to.deep.equal(new Date(-8.64e15));
    expect(decodeMsgpack(ts12(999_999_999, 0n))).to.deep.equal(new Date(999));
    for (const [bytes, reason] of [
      [ts12(0, 8_640_000_000_001n), /beyond the range of a JavaScript Date/],
      [ts12(0, -8_640_000_000_001n), /beyond the range of a JavaScript Date/],
      [ts12(0, 2n ** 62n), /beyond the range of a JavaScript Date/],
      [ts12(1_000_000_000, 0n), /1000000000 nanoseconds/],
      [ts12(0xffffffff, 0n), /nanoseconds/],
      [Buffer.from('d7ff' + 'fffffffc' + '00000000', 'hex'), /nanoseconds/], // 8-byte form: 30 bits of nanoseconds hold up to 1073741823
      [Buffer.from('d4ffff', 'hex'), /a timestamp of 1 bytes/], // what msgpackr wrote for an Invalid Date
      [Buffer.from('d40001', 'hex'), /extension type 0 \(1 bytes: 1\)/],
      [Buffer.from('d50000ff', 'hex'), /extension type 0 \(2 bytes\)/],
      [Buffer.from('c70000', 'hex'), /extension type 0 \(0 bytes\)/],
    ] as Array<[Buffer, RegExp]>) {
      expect(() => decodeMsgpack(bytes), bytes.toString('hex')).to.throw(reason);
      expect(() => decodeFrame(codec, Buffer.concat([Buffer.from([0x93, PROTOCOL_VERSION, 0x01]), bytes]), 100)).to.throw(reason);
    }
    expect(decodeMsgpack(Buffer.from('d40000', 'hex'))).to.equal(undefined);
    // ext 0x42: any length, as the table says (none is 0, as a two's complement of no bytes)
    expect(decodeMsgpack(Buffer.from('c70042', 'hex'))).to.equal(0n);
    expect(decodeMsgpack(Buffer.from('d442ff', 'hex'))).to.equal(-1n);
    expect(decodeMsgpack(Buffer.from('81c70042a178', 'hex'))).to.deep.equal({ 0: 'x' });
  });

  it('refuses strings and keys that are not UTF-8 (two keys would merge into U+FFFD), and reads U+FFFD that was sent', () => {
    for (const hex of ['a1ff', 'a3eda080', 'a2c328', 'a6' + '61626364' + 'c328', 'b0' + '61'.repeat(14) + 'e282', 'd920' + '61'.repeat(30) + 'f090', '82a1ff01a1fe02', '82a3eda08001a3edb08002']) {
      expect(() => decodeMsgpack(Buffer.from(hex, 'hex')), hex).to.throw(/is not UTF-8/);
    }
    expect(decodeMsgpack(Buffer.from('a3efbfbd', 'hex'))).to.equal('\ufffd');
    expect(decodeMsgpack(Buffer.from('82a3efbfbd01a4f09f9880' + '02', 'hex'))).to.deep.equal({ '\ufffd': 1, '😀': 2 });
    expect(decodeMsgpack(Buffer.from('d920' + '61'.repeat(29) + 'efbfbd', 'hex'))).to.equal(`${'a'.repeat(29)}\ufffd`);
  });

  it('reads the frame version written in any integer format (Go and Java write int 64), and names another version once, as a number', () => {
    const message = '81a178' + '01';
    for (const version of ['05', 'cc05', 'cd0005', 'ce00000005', 'cf0000000000000005', 'd005', 'd10005', 'd200000005', 'd30000000000000005']) {
      expect(decodeFrame(codec, Buffer.from('92' + version + message, 'hex'), 100), version).to.deep.equal([{ x: 1 }]);
      expect(decodeFrame(codec, Buffer.from('dc0002' + version + message, 'hex'), 100), version).to.deep.equal([{ x: 1 }]);
    }
    expect(() => decodeFrame(codec, Buffer.from('92d30000000000000006' + message, 'hex'), 100)).to.throw(/^unsupported frame version 6; this library speaks 5$/);
    expect(() => decodeFrame(codec, Buffer.from('92cf0000000000000002' + message, 'hex'), 100)).to.throw(/^unsupported frame version 2 \(an older intracom/);
    expect(() => decodeFrame(codec, Buffer.from('92a135' + message, 'hex'), 100)).to.throw(/^unsupported frame version "5" \(a string\); this library speaks 5$/);
    expect(() => decodeFrame(codec, Buffer.from('92cb4014800000000000' + message, 'hex'), 100)).to.throw(/^unsupported frame version 5.125; this library speaks 5$/);
  });

  it('accepts envelope numbers written as any MessagePack integer or float (uint64 nanoseconds from Python)', () => {
    const envelope = createQuery({ serviceNameSource: 'py', serviceNameDest: 'b', type: QueryType.FIRE_AND_FORGET, action: 'go', timeout_ms: 0 }) as unknown as Record<string, unknown>;
    const foreign: Record<string, unknown> = { ...envelope, query_ts: 1_764_500_000_123_456_789n, query_ms: 1_764_500_000_123n, timeout_ms: 2.5, processAttempts: 0n, response_ts: 0 };
    const decoded = decodeFrame(codec, codec.encode([PROTOCOL_VERSION, foreign]), 10_000)[0] as Record<string, unknown>;
    expect(typeof decoded.query_ts).to.equal('bigint');
    expect(invalidQueryReason(decoded)).to.equal(undefined);
    expect(decoded).to.include({ query_ts: 1_764_500_000_123_456_789, query_ms: 1_764_500_000_123, timeout_ms: 2.5, processAttempts: 0 });
    expect(invalidQueryReason({ ...envelope, query_ms: -1n })).to.match(/query_ms/);
  });

  it('writes frames any MessagePack reader can read: no extension but timestamp, undefined and big integers', () => {
    const frame = encodeFrame(codec, [{ headers: { name: 'a.b', createdAt: 'now', serviceName: 's' }, payloads: [64, 65, 71, { x: 1 }] }]);
    expect(decodeMsgpack(frame)).to.deep.equal([PROTOCOL_VERSION, { headers: { name: 'a.b', createdAt: 'now', serviceName: 's' }, payloads: [64, 65, 71, { x: 1 }] }]);
  });
});

/** What msgpack keeps of a JSON value: everything, with -0 as 0 (an integer format). */
function normalise(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k === '__proto__' ? '__proto_' : k, normalise(v)]));
  return value;
}
