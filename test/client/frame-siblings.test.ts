/**
 * A value every receiver refuses (a Map key that is an object, an Invalid
 * Date, a boxed primitive...) is refused at the sender with a
 * ValidationError naming where, before anything is sent, so that it never
 * travels in the frame of the valid messages sent in the same tick and takes
 * them down with it: events, FIRE_AND_FORGET queries and RPC replies.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { RemoteError, ValidationError } from '../../src/errors/index';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { startRedis, type TestRedis } from '../support/redis-server';
import { rejection, until } from '../support/async';

/** Values that each used to leave the sender and make the whole frame malformed at every receiver, with where the error must point. */
const REFUSED_BY_RECEIVERS: Array<[string, () => unknown, RegExp]> = [
  ['a Map key that is an object', () => ({ m: new Map([[{ a: 1 }, 'v']]) }), /payload\.m has a Map key that is an object/],
  ['a Map key that is an array', () => ({ m: new Map([[[1], 'v']]) }), /payload\.m has a Map key that is an array/],
  ['a Map key that is a Buffer', () => ({ m: new Map([[Buffer.from('k'), 'v']]) }), /payload\.m has a Map key that is a Buffer/],
  ['a Map key that is a Date', () => ({ m: new Map([[new Date(0), 'v']]) }), /payload\.m has a Map key that is a Date/],
  ['a Map key that is undefined', () => ({ m: new Map([[undefined, 'v']]) }), /payload\.m has a Map key that is undefined/],
  ['a Map key that is a Map, nested', () => ({ a: [{ b: new Map([['k', new Map([[new Map(), 1]])]]) }] }), /payload\.a\[0\]\.b\.get\("k"\) has a Map key that is an object \(Map\)/],
  ['Map keys 1 and "1" (a receiver reads both as the key "1")', () => ({ m: new Map<unknown, number>([[1, 1], ['1', 2]]) }), /payload\.m has the Map keys 1 and "1", which a receiver reads as one key "1"/],
  ['Map keys 5n and 5', () => ({ m: new Map<unknown, number>([[5n, 1], [5, 2]]) }), /payload\.m has the Map keys 5n and 5/],
  ['an Invalid Date', () => ({ at: new Date(Number.NaN) }), /payload\.at is an Invalid Date/],
  ['an Invalid Date returned by the toJSON of a class instance (which msgpackr sends instead of its properties)', () => ({ t: new (class Stamp { ok = 1; toJSON(): unknown { return { at: new Date(Number.NaN) }; } })() }), /payload\.t\.toJSON\(\)\.at is an Invalid Date/],
  ['an Invalid Date in a Set', () => new Set([new Date(Number.NaN)]), /payload \(Set item 0\) is an Invalid Date/],
  ['a boxed Boolean', () => ({ flag: new Boolean(true) }), /payload\.flag is a boxed Boolean/],
  ['a boxed Number', () => ({ n: new Number(5) }), /payload\.n is a boxed Number/],
  ['a boxed String', () => [new String('s')], /payload\[0\] is a boxed String/],
  ['a BigInt64Array', () => ({ big: new BigInt64Array([1n]) }), /payload\.big is a BigInt64Array/],
  ['a lone surrogate in a Map (msgpackr writes it as bytes that are not UTF-8)', () => ({ m: new Map([['k', 'x\ud800']]) }), /payload\.m\.get\("k"\) is a string with a lone surrogate/],
  ['a lone surrogate as a Map key', () => new Map([['\udc00', 1]]), /payload\.get\(.*\) is a string with a lone surrogate/],
  ['a lone surrogate in a class instance', () => ({ at: new (class Point { label = '\ud800' })() }), /payload\.at\.label is a string with a lone surrogate/],
  ['__proto__ beside __proto_ (the receiver renames __proto__ and the two would merge)', () => ({ o: JSON.parse('{"__proto__": 1, "__proto_": 2}') as unknown }), /payload\.o\.__proto__ is a key beside a key "__proto_"/],
  ['__proto__ beside __proto_ as Map keys', () => new Map([['__proto_', 1], ['__proto__', 2]]), /payload\.get\("__proto__"\) is a key beside a key "__proto_"/],
];

describe('a value every receiver refuses is refused at the sender, and its siblings of the tick arrive (redis)', function () {
  this.timeout(20_000);
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis.stop());
  const options = (service: string) => ({ service, redis: redis.url, namespace: redis.namespace });

  it('publish: before, bad, after in one tick -> the bad one rejects with a ValidationError naming where, before and after arrive', async () => {
    const sender = new RedisClient(options('siblings-sender'));
    const listener = new RedisClient(options('siblings-listener'));
    const received: unknown[] = [];
    const malformed: unknown[] = [];
    listener.on('malformed', (error) => malformed.push(error));
    await Promise.all([sender.connect(), listener.connect()]);
    try {
      await listener.subscribe('siblings.t', (payload) => void received.push(payload));
      for (const [what, make, where] of REFUSED_BY_RECEIVERS) {
        received.length = 0;
        const [before, bad, after] = await Promise.allSettled([sender.publish('siblings.t', 'before'), sender.publish('siblings.t', make()), sender.publish('siblings.t', 'after')]);
        expect(bad.status, what).to.equal('rejected');
        const error = (bad as PromiseRejectedResult).reason as Error;
        expect(error, what).to.be.instanceOf(ValidationError);
        expect(error.message, what).to.match(/^cannot publish to "siblings\.t": /).and.match(where);
        expect([before.status, after.status], what).to.deep.equal(['fulfilled', 'fulfilled']);
        await until(() => received.length === 2, 5000, `before and after (${what})`);
        expect(received, what).to.deep.equal(['before', 'after']);
      }
      expect(malformed).to.deep.equal([]);
      expect(listener.stats().invalidEvents).to.equal(0);
    } finally {
      await Promise.all([sender.close(), listener.close()]);
    }
  });

  it('fireAndForget: before, bad, after in one tick -> the bad one rejects, before and after are handled (none dead-lettered)', async () => {
    const worker = new RedisRPCClient({ ...options('siblings-worker'), queues: { blockMs: 50 } });
    const producer = new RedisRPCClient({ ...options('siblings-producer'), queues: { consume: false } });
    const handled: unknown[] = [];
    worker.handle('record', (query) => void handled.push(query));
    await Promise.all([worker.connect(), producer.connect()]);
    try {
      const [before, bad, after] = await Promise.allSettled([
        producer.fireAndForget('siblings-worker', 'record', 'before'),
        producer.fireAndForget('siblings-worker', 'record', { at: new Date(Number.NaN), keys: new Map([[[1], 1]]) }),
        producer.fireAndForget('siblings-worker', 'record', 'after'),
      ]);
      expect([before.status, after.status]).to.deep.equal(['fulfilled', 'fulfilled']);
      const error = (bad as PromiseRejectedResult).reason as Error;
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/query\.at is an Invalid Date/);
      await until(() => handled.length === 2, 10_000, 'the two valid queries handled');
      expect(handled).to.have.members(['before', 'after']);
      expect(await producer.deadLetters('siblings-worker')).to.deep.equal([]);
    } finally {
      await Promise.all([worker.close(), producer.close()]);
    }
  });

  it('RPC: a handler returning an Invalid Date gets its caller a clear error reply; its sibling call of the same reply frame succeeds', async () => {
    const server = new RedisRPCClient(options('siblings-rpc'));
    const caller = new RedisRPCClient(options('siblings-caller'));
    await server.expose('when', ([valid]) => (valid === true ? new Date(0) : new Date(Number.NaN)));
    await Promise.all([server.connect(), caller.connect()]);
    try {
      const calls = caller.with({ timeoutMs: 5000 });
      const [bad, good] = await Promise.allSettled([calls.callService('siblings-rpc', 'when', false), calls.callService('siblings-rpc', 'when', true)]);
      expect(good.status).to.equal('fulfilled');
      expect((good as PromiseFulfilledResult<unknown>).value).to.deep.equal(new Date(0));
      expect(bad.status).to.equal('rejected');
      const error = (bad as PromiseRejectedResult).reason as Error;
      expect(error).to.be.instanceOf(RemoteError);
      expect(error.message).to.match(/the result is an Invalid Date/);
      expect((error as RemoteError).remoteCode).to.equal('ERR_RESULT_NOT_SENDABLE');
    } finally {
      await Promise.all([server.close(), caller.close()]);
    }
  });
});

describe('values a receiver refuses, checked without a route', () => {
  it('each is refused by every sending path that checks values (one check): publish on the memory route too', async () => {
    const client = new RedisClient({ service: 'siblings-memory', route: 'memory' });
    await client.connect();
    try {
      for (const [what, make, where] of REFUSED_BY_RECEIVERS) {
        const error = await rejection(client.publish('siblings.m', make()));
        expect(error, what).to.be.instanceOf(ValidationError);
        expect(error.message, what).to.match(where);
      }
      // what receivers do read still goes: Map keys that are strings, numbers, booleans, null and bigints; valid Dates at the edges of their range
      await client.publish('siblings.m', { m: new Map<unknown, number>([['a', 1], [2, 2], [true, 3], [null, 4], [5n, 5]]), first: new Date(-8.64e15), last: new Date(8.64e15), text: 'x\ud800' });
    } finally {
      await client.close();
    }
  });
});

describe('a key with a lone surrogate (two of them would both be written as U+FFFD and merge)', () => {
  it('is refused with a ValidationError, and the other events of the tick are sent', async () => {
    const client = new RedisClient({ service: 'siblings-keys', route: 'memory' });
    const received: unknown[] = [];
    await client.connect();
    try {
      await client.subscribe('siblings.k', (payload) => void received.push(payload));
      const [before, bad, after] = await Promise.allSettled([client.publish('siblings.k', 'before'), client.publish('siblings.k', { 'a\ud800': 1, 'a\udbff': 2 }), client.publish('siblings.k', 'after')]);
      expect([before.status, after.status]).to.deep.equal(['fulfilled', 'fulfilled']);
      const error = (bad as PromiseRejectedResult).reason as Error;
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/^a message to ".*siblings\.k" cannot be encoded: the key "a\\ud800" holds a lone surrogate/);
      await until(() => received.length === 2);
      expect(received).to.deep.equal(['before', 'after']);
    } finally {
      await client.close();
    }
  });
});
