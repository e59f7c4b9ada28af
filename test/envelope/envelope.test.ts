import { expect } from 'chai';
import { Packr } from 'msgpackr';
import { decodeFrame, encodeFrame, MsgpackCodec, PROTOCOL_VERSION } from '../../src/envelope/codec';
import { createQuery, monotonicNs } from '../../src/envelope/query';
import { QueryRoute, QueryState, QueryType } from '../../src/envelope/types';
import { invalidEventReason, invalidQueryReason, isQuery } from '../../src/envelope/validate';
import { newUuid, ShortIds } from '../../src/envelope/ids';

describe('envelope', () => {
  const codec = new MsgpackCodec();

  it('makes ids in one place: UUIDs for ids users keep, short ids bounded in length and unique across a prefix redraw', () => {
    expect(newUuid()).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ids = new ShortIds(6, 36 ** 2);
    const seen = new Set<string>();
    for (let i = 0; i < 3 * 36 ** 2; i++) {
      const id = ids.next();
      expect(id.length).to.be.at.most(10);
      seen.add(id);
    }
    expect(seen.size).to.equal(3 * 36 ** 2);
  });

  it('creates a PENDING query with the seed fields, ids and timestamps', () => {
    const before = monotonicNs();
    const query = createQuery({ serviceNameSource: 'a', serviceNameDest: 'b', type: QueryType.ASYNC, action: 7, query: { x: 1 }, timeout_ms: 500 });
    expect(query).to.include({ serviceNameSource: 'a', serviceNameDest: 'b', type: 'ASYNC', action: 7, state: 'PENDING', route: 'redis', timeout_ms: 500, processAttempts: 0, response_ts: 0 });
    expect(query.queryId).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const another = createQuery({ serviceNameSource: 'a', serviceNameDest: 'b', type: QueryType.ASYNC, action: 7, timeout_ms: 500 });
    expect(another.queryId).to.not.equal(query.queryId);
    expect(query.query_ts).to.be.at.least(before);
    expect(query.query_ms).to.be.closeTo(Date.now(), 1000);
    expect(query.response).to.equal(null);
    expect(isQuery(query)).to.equal(true);
    expect(isQuery(codec.decode(codec.encode(query)))).to.equal(true);
  });

  it('refuses each malformed field with a reason', () => {
    const valid = createQuery({ serviceNameSource: 'a', serviceNameDest: 'b', type: QueryType.SYNC, action: 'go', timeout_ms: 1 });
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ queryId: 5 }, /queryId/],
      [{ queryId: '' }, /queryId/],
      [{ serviceNameSource: null }, /serviceNameSource/],
      [{ serviceNameDest: '' }, /serviceNameDest/],
      [{ route: 'carrier-pigeon' }, /route "carrier-pigeon" is not one of/],
      [{ type: 'MAYBE' }, /type "MAYBE" is not one of/],
      [{ state: 'LOST' }, /state "LOST" is not one of/],
      [{ action: { a: 1 } }, /action/],
      [{ response: 'ok' }, /response/],
      [{ response: { ok: 'yes' } }, /response/],
      [{ query_ts: '1' }, /query_ts/],
      [{ timeout_ms: -1 }, /timeout_ms/],
      [{ processAttempts: Number.NaN }, /processAttempts/],
      [{ timout_ms: 5 }, /timout_ms/],
    ];
    for (const [change, reason] of cases) {
      expect(invalidQueryReason({ ...valid, ...change }), JSON.stringify(change)).to.match(reason);
    }
    expect(invalidQueryReason([valid])).to.match(/not an object/);
    expect(invalidQueryReason(valid)).to.equal(undefined);
    expect(Object.values(QueryState)).to.deep.equal(['PENDING', 'DONE', 'ERROR']);
    expect(Object.values(QueryRoute)).to.include.members(['memory', 'redis', 'local']);
  });

  it('checks event headers (seeds/004)', () => {
    expect(invalidEventReason({ headers: { name: 'flow.starting', createdAt: new Date().toISOString(), serviceName: 'flows' }, payload: {} })).to.equal(undefined);
    expect(invalidEventReason({ headers: { name: 'x', createdAt: 5, serviceName: 's' }, payload: 1 })).to.match(/createdAt/);
    expect(invalidEventReason({ headers: { name: 'x', createdAt: 'now', serviceName: 's' } })).to.match(/payload is missing/);
    expect(invalidEventReason('text')).to.match(/not an object/);
  });

  it('cannot be used for prototype pollution', () => {
    const hostile = new Packr({ useRecords: false }).pack(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'));
    const decoded = codec.decode(hostile) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).to.equal(Object.prototype);
    expect((decoded as { polluted?: unknown }).polluted).to.equal(undefined);
    expect(({} as { polluted?: unknown }).polluted).to.equal(undefined);
  });

  it('frames messages with a version header and refuses what is not a frame', () => {
    const frame = encodeFrame(codec, [{ a: 1 }, { a: 2 }]);
    expect(decodeFrame(codec, frame, 1000)).to.deep.equal([{ a: 1 }, { a: 2 }]);
    expect(() => decodeFrame(codec, frame, 3)).to.throw(/exceeds the limit of 3/);
    expect(() => decodeFrame(codec, codec.encode({ a: 1 }), 1000)).to.throw(/not a frame/);
    expect(() => decodeFrame(codec, codec.encode([PROTOCOL_VERSION + 1, 'x']), 1000)).to.throw(new RegExp(`unsupported frame version ${PROTOCOL_VERSION + 1}`));
    expect(() => decodeFrame(codec, Buffer.from([0xc1]), 1000)).to.throw();
  });

});
