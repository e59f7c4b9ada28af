/**
 * Query envelopes a raw Redis writer appends (msgpackr, not intracom's
 * encoder) that break docs/protocol.md's "Query envelope": names against the
 * name rules, a missing field, a type or a destination that is not the
 * stream's. Each is dead-lettered as malformed (query null) and never reaches
 * a handler; the valid envelope beside it in the same frame still runs.
 */
import { expect } from 'chai';
import type { QueryContext } from '../../src/queues/QueryHandlers';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { rawFrame as frame, useRawRedis } from '../support/raw-redis';

/** A valid envelope for `calc`, every field present, with `changes` applied (a value `undefined` removes the field). */
function envelope(queryId: string, type: string, changes: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    queryId,
    serviceNameSource: 'py',
    serviceNameDest: 'calc',
    route: 'redis',
    type,
    action: 'resize',
    query: { image: queryId },
    response: null,
    result: null,
    state: 'PENDING',
    query_ts: 0,
    response_ts: 0,
    query_ms: Date.now(),
    timeout_ms: 0,
    processAttempts: 0,
  };
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined) delete base[field];
    else base[field] = value;
  }
  return base;
}

describe('hostile query envelopes from a raw writer (redis)', function () {
  this.timeout(30_000);
  const fixture = useRawRedis();

  it('refuses names against the rules, missing fields, and a type or destination not the stream\'s: dead-lettered as malformed, never run', async () => {
    const calc = new RedisRPCClient({ service: 'calc', redis: fixture.redis.url, namespace: `${fixture.redis.namespace}e`, queues: { blockMs: 50 } });
    const ran = new Map<string, QueryContext>();
    const waiting = new Map<string, () => void>();
    calc.handle('resize', (query: { image: string }, context) => {
      ran.set(context.queryId, context);
      waiting.get(context.queryId)?.();
    });
    await calc.connect();
    const names = calc.client.names;
    const FNF = 'FIRE_AND_FORGET';
    const cases: Array<[label: string, stream: string, bad: Record<string, unknown>, detail: RegExp]> = [
      ['source with a brace and a glob', names.queryStream('calc'), envelope('src1', FNF, { serviceNameSource: 'a}b*' }), /^serviceNameSource must be 1-200 characters.*received "a}b\*"/],
      ['source with a from segment', names.queryStream('calc'), envelope('src2', FNF, { serviceNameSource: 'x.from.y' }), /^serviceNameSource must be .*received "x\.from\.y"/],
      ['destination with a from segment', names.queryStream('calc'), envelope('dst1', FNF, { serviceNameDest: 'calc.from.x' }), /^serviceNameDest must be .*received "calc\.from\.x"/],
      ['query missing', names.queryStream('calc'), envelope('mq', FNF, { query: undefined }), /^query is missing/],
      ['result missing', names.queryStream('calc'), envelope('mr', FNF, { result: undefined }), /^result is missing/],
      ['response missing', names.queryStream('calc'), envelope('mp', FNF, { response: undefined }), /^response is missing/],
      ['SYNC in the FIRE_AND_FORGET stream', names.queryStream('calc'), envelope('t1', 'SYNC'), /^type "SYNC" does not belong in .*queries, which holds FIRE_AND_FORGET queries only/],
      ['BROADCAST in the FIRE_AND_FORGET stream', names.queryStream('calc'), envelope('t2', 'BROADCAST'), /^type "BROADCAST" does not belong in/],
      ['FIRE_AND_FORGET in the BROADCAST stream', names.broadcastStream('calc'), envelope('t3', FNF), /^type "FIRE_AND_FORGET" does not belong in .*broadcast, which holds BROADCAST queries only/],
      ['another destination', names.queryStream('calc'), envelope('d1', FNF, { serviceNameDest: 'other' }), /^serviceNameDest "other" is not "calc"/],
    ];
    try {
      const entries: string[] = [];
      for (const [label, stream, bad] of cases) {
        const type = stream === names.broadcastStream('calc') ? 'BROADCAST' : FNF;
        const good = envelope(`good-${bad.queryId as string}`, type);
        const arrived = new Promise<void>((resolve) => waiting.set(good.queryId as string, resolve));
        entries.push((await fixture.raw.xadd(stream, '*', 'm', frame(bad, good))) as string);
        // the valid envelope after it in the same frame runs once the bad one was dealt with
        await arrived;
        expect(ran.has(bad.queryId as string), label).to.equal(false);
      }
      const letters = await calc.deadLetters('calc');
      for (const [i, [label, , , detail]] of cases.entries()) {
        const letter = letters.find((candidate) => candidate.entryId === entries[i]);
        expect(letter, label).to.not.equal(undefined);
        expect(letter?.reason, label).to.equal('malformed');
        expect(letter?.query, label).to.equal(null);
        expect(letter?.detail, label).to.match(detail);
      }
      expect(letters).to.have.length(cases.length);
      // what ran was what the stream holds: its own type, for its own service
      for (const context of ran.values()) expect([FNF, 'BROADCAST']).to.include(context.type);
    } finally {
      await calc.close();
    }
  });
});
