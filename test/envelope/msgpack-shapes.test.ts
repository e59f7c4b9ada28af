import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { Packr, unpack } from 'msgpackr';
import { decodeMsgpack, mapShapeStats, resetMapShapes, setMapShapes } from '../../src/envelope/msgpack';

const packr = new Packr({ useRecords: false, moreTypes: false });

/** A map as the wire may carry it: entries in order, keys of any MessagePack type, repeated keys allowed. */
interface WireMap {
  entries: Array<[unknown, unknown]>;
}

/** The MessagePack bytes of a value, WireMap values as maps with their entries exactly as given. */
function encode(value: unknown): Buffer {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !('entries' in value)) return packr.pack(value);
  const { entries } = value as WireMap;
  const header = entries.length < 16 ? Buffer.from([0x80 | entries.length]) : Buffer.from([0xde, entries.length >> 8, entries.length & 0xff]);
  return Buffer.concat([header, ...entries.flatMap(([key, item]) => [packr.pack(key), encode(item)])]);
}

/** An array of `count` copies of the same encoded value. */
function repeated(bytes: Buffer, count: number): Buffer {
  return Buffer.concat([Buffer.from([0xdc, count >> 8, count & 0xff]), ...Array.from({ length: count }, () => bytes)]);
}

/** What a decoded value is, key order, prototype and property attributes included (chai's deep equality ignores them). */
function anatomy(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return ['bin', value.toString('hex')];
  if (value instanceof Date) return ['date', value.getTime()];
  if (Array.isArray(value)) return ['array', value.map(anatomy)];
  if (typeof value === 'object' && value !== null) {
    return [
      'object',
      Object.getPrototypeOf(value) === Object.prototype,
      Reflect.ownKeys(value).map((key) => {
        const { writable, enumerable, configurable } = Object.getOwnPropertyDescriptor(value, key) ?? {};
        return [String(key), writable, enumerable, configurable, anatomy((value as Record<string | symbol, unknown>)[key])];
      }),
    ];
  }
  if (typeof value === 'number' && Object.is(value, -0)) return ['number', '-0'];
  if (typeof value === 'bigint') return ['bigint', String(value)];
  return [typeof value, value];
}

/** Decodes with every map read generically: what the decoder returns without any key order remembered. */
function decodeGenerically(bytes: Buffer): unknown {
  setMapShapes(false);
  try {
    return decodeMsgpack(bytes);
  } finally {
    setMapShapes(true);
  }
}

/** What decoding gives: the anatomy of the value, or the reason it is refused (a map holding both __proto__ and __proto_). */
function outcome(decode: () => unknown): unknown {
  try {
    return anatomy(decode());
  } catch (error) {
    return ['refused', (error as Error).message];
  }
}

/** Objects and arrays of `value`, to check that two results share none. */
function nodes(value: unknown, into = new Set<object>()): Set<object> {
  if (typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    into.add(value);
    for (const item of Object.values(value)) nodes(item, into);
  }
  return into;
}

const key = fc.oneof(
  fc.constantFrom('id', 'name', 'ok', 'queryId', 'timeout_ms', '__proto__', '__proto_', 'constructor', 'toString', 'hasOwnProperty', '0', '1', '10', '4294967295', '-1', '', 'é', '✓✓', 'a'.repeat(16), 'b'.repeat(17), 'x"y\\z', '\u2028'),
  fc.string({ maxLength: 20 }),
  fc.integer({ min: -300, max: 300 }),
  fc.boolean(),
  fc.constant(null),
);
const leaf = fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null), fc.double());
const { wireMap } = fc.letrec<{ wireMap: WireMap }>((tie) => ({
  wireMap: fc.record({ entries: fc.array(fc.tuple(key, fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('wireMap'))), { maxLength: 18 }) }),
}));

describe('the strict decoder: map shapes (key orders compiled once seen often)', () => {
  it('decodes every map exactly as without shapes: key order, duplicates (last wins), __proto__ renamed (refused beside __proto_), number-like and non-string keys, prototype keys', function () {
    // 500 runs of 7 decodes of up to 6 frames each: 12 s on a loaded 2-core machine
    this.timeout(60_000);
    const before = mapShapeStats().compilations;
    fc.assert(
      fc.property(fc.array(wireMap, { minLength: 1, maxLength: 3 }), (maps) => {
        // as in a new process, where the first key orders seen 4 times are compiled at once; each map 8 times in a
        // frame, and as often a map of the same keys but the last (same set of shapes, same first keys)
        resetMapShapes();
        const variants = maps.map((map) => ({ entries: map.entries.map(([k, v], i): [unknown, unknown] => [i === map.entries.length - 1 ? `${String(k)}~` : k, v]) }));
        const frames = [...maps, ...variants].map((map) => repeated(encode(map), 8));
        for (let round = 0; round < 3; round++) for (const frame of frames) outcome(() => decodeMsgpack(frame));
        for (const frame of frames) {
          const generic = outcome(() => decodeGenerically(frame));
          expect(outcome(() => decodeMsgpack(frame))).to.deep.equal(generic);
          expect(outcome(() => decodeMsgpack(frame))).to.deep.equal(generic); // again: a shape compiled by the first
        }
      }),
      { numRuns: 500 },
    );
    // the property ran through compiled shapes, not only the generic path
    expect(mapShapeStats().compilations - before).to.be.above(500);
  });

  it('reads maps of plain data as msgpackr does, key order included', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 12 }).filter((k) => k !== '__proto__'), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 10 }), (object) => {
        const frame = repeated(packr.pack(object), 300);
        const ours = decodeMsgpack(frame) as unknown[];
        const theirs = unpack(frame) as unknown[];
        for (const i of [0, 5, 299]) expect(anatomy(ours[i])).to.deep.equal(anatomy(theirs[i]));
      }),
      { numRuns: 200 },
    );
  });

  it('never sets a prototype: __proto__ in a key order compiled; a map holding __proto_ beside __proto__ (which the rename would merge) is refused', () => {
    const hostile = repeated(encode({ entries: [['__proto__', { entries: [['polluted', true]] }], ['a', 1]] }), 1000);
    for (let round = 0; round < 3; round++) {
      for (const object of decodeMsgpack(hostile) as Array<Record<string, unknown>>) {
        expect(Object.getPrototypeOf(object)).to.equal(Object.prototype);
        expect(Object.keys(object)).to.deep.equal(['__proto_', 'a']);
        expect(object.polluted).to.equal(undefined);
      }
    }
    const twice = repeated(encode({ entries: [['__proto_', 1], ['__proto__', 2], ['constructor', 3], ['toString', 4]] }), 1000);
    for (let round = 0; round < 3; round++) expect(() => decodeMsgpack(twice)).to.throw(/both __proto__ and __proto_/);
    // either order, compiled or generic, nested in a compiled key order or not
    const reversed = repeated(encode({ entries: [['a', 1], ['__proto__', 2], ['__proto_', 3]] }), 1000);
    for (let round = 0; round < 3; round++) expect(() => decodeMsgpack(reversed)).to.throw(/both __proto__ and __proto_/);
    const alone = repeated(encode({ entries: [['__proto_', 1], ['b', 2]] }), 1000);
    for (let round = 0; round < 3; round++) for (const object of decodeMsgpack(alone) as unknown[]) expect(object).to.deep.equal({ __proto_: 1, b: 2 });
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('assigns as the generic path does a key that Object.prototype holds (an accessor added by other code is called, not shadowed)', () => {
    let calls = 0;
    Object.defineProperty(Object.prototype, 'protoSetter', {
      set() {
        calls++;
      },
      configurable: true,
    });
    try {
      const frame = repeated(encode({ entries: [['protoSetter', 1], ['b', 2]] }), 1000);
      for (let round = 0; round < 3; round++) for (const object of decodeMsgpack(frame) as object[]) expect(Object.keys(object)).to.deep.equal(['b']);
      expect(calls).to.equal(3000);
    } finally {
      delete (Object.prototype as Record<string, unknown>).protoSetter;
    }
  });

  it('orders number-like keys as any object does (array indices first, ascending), compiled or not', () => {
    const frame = repeated(encode({ entries: [['10', 'a'], ['x', 'b'], ['1', 'c'], ['0', 'd'], [2, 'e']] }), 1000);
    for (let round = 0; round < 3; round++) for (const object of decodeMsgpack(frame) as object[]) expect(Object.keys(object)).to.deep.equal(['0', '1', '2', '10', 'x']);
  });

  it('reads a map that begins as one compiled key order and ends as another as itself', () => {
    resetMapShapes();
    // the same entry count and first bytes: the same set of shapes
    const a = { entries: [['id0', 1], ['kind', 2], ['x', 3]] } as WireMap;
    const b = { entries: [['id1', 1], ['kind', 2], ['y', 3]] } as WireMap;
    for (const map of [a, b]) for (let round = 0; round < 3; round++) decodeMsgpack(repeated(encode(map), 8));
    const mixed = { entries: [['id0', 1], ['kind', 2], ['y', 3]] } as WireMap;
    for (let round = 0; round < 3; round++) for (const object of decodeMsgpack(repeated(encode(mixed), 8)) as object[]) expect(Object.keys(object)).to.deep.equal(['id0', 'kind', 'y']);
  });

  it('builds a new tree for every input: nothing decoded is shared with another result, or within one', () => {
    const frame = repeated(encode({ entries: [['id', 1], ['inner', { entries: [['list', [1, 2]]] }], ['ok', true]] }), 600);
    decodeMsgpack(frame);
    const first = decodeMsgpack(frame);
    const second = decodeMsgpack(frame);
    const seen = nodes(first);
    expect(seen.size).to.equal(1 + 600 * 3);
    for (const node of nodes(second)) expect(seen.has(node)).to.equal(false);
  });

  it('holds a bounded number of shapes and compiles at most once per 4096 maps (after 16 at once), whatever key orders a sender invents', () => {
    resetMapShapes();
    const before = mapShapeStats().compilations;
    let maps = 0;
    let seed = 17;
    const random = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let frame = 0; frame < 400; frame++) {
      const objects: Array<Record<string, number>> = [];
      while (objects.length < 256) {
        // each new key order 4 times in a row: enough to be counted for compilation
        const keys = Array.from({ length: 1 + Math.floor(random() * 16) }, () => `k${Math.floor(random() * 1e9).toString(36)}`);
        for (let copy = 0; copy < 4; copy++) objects.push(Object.fromEntries(keys.map((k, i) => [k, i])));
      }
      const bytes = packr.pack(objects);
      const decoded = decodeMsgpack(bytes);
      maps += objects.length;
      if (frame % 50 === 0) expect(anatomy(decoded)).to.deep.equal(anatomy(decodeGenerically(bytes)));
      expect(mapShapeStats().held).to.be.at.most(256);
    }
    const compiled = mapShapeStats().compilations - before;
    expect(compiled).to.be.at.most(maps / 4096 + 16);
  });

  it('decodes the same without code generation (node --disallow-code-generation-from-strings): shapes off, nothing compiled', async () => {
    const script = [
      "const { decodeMsgpack, mapShapeStats } = require('./src/envelope/msgpack');",
      "const { Packr } = require('msgpackr');",
      'const bytes = new Packr({ useRecords: false }).pack(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: "n", ok: true })));',
      'let last;',
      'for (let round = 0; round < 5; round++) last = decodeMsgpack(bytes);',
      'console.log(JSON.stringify({ stats: mapShapeStats(), last: last[1999], keys: Object.keys(last[7]) }));',
    ].join('\n');
    const stdout = await new Promise<string>((resolvePromise, reject) => {
      execFile(process.execPath, ['--disallow-code-generation-from-strings', '--import', 'tsx', '-e', script], { cwd: resolve(__dirname, '..', '..'), timeout: 30_000 }, (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolvePromise(out)));
    });
    expect(JSON.parse(stdout)).to.deep.equal({ stats: { held: 0, compilations: 0, enabled: false }, last: { id: 1999, name: 'n', ok: true }, keys: ['id', 'name', 'ok'] });
  });

  it('compiles a key order that repeats, and reads its maps through it', () => {
    resetMapShapes();
    const frame = repeated(encode({ entries: [['shapeTestA', 1], ['shapeTestB', 'two']] }), 600);
    const before = mapShapeStats().compilations;
    for (let round = 0; round < 3; round++) decodeMsgpack(frame);
    expect(mapShapeStats().compilations).to.be.above(before);
    expect((decodeMsgpack(frame) as unknown[])[599]).to.deep.equal({ shapeTestA: 1, shapeTestB: 'two' });
  });
});
