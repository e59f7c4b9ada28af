/**
 * Bad input is refused at the call with a ValidationError that names what
 * is wrong, and nothing is sent, stored or silently dropped: values msgpack
 * cannot carry (a symbol, a function, a value that refers to itself, a
 * getter that throws), handlers that are not functions, and option names
 * nobody declared (a typo would otherwise leave the default in force).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { RedisClient } from '../../src/client/RedisClient';
import { CLIENT_OPTION_NAMES } from '../../src/client/RedisClientOptions';
import { ValidationError } from '../../src/errors/index';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { MemoryDeployment } from '../../src/testing/index';
import { defineVar } from '../../vars/define';
import { MsgpackCodec } from '../../src/envelope/codec';
import { QueryType } from '../../src/envelope/types';
import { onEachRoute } from '../support/routes';
import { rejection, thrown, until } from '../support/async';

const selfReferring = (): unknown => {
  const value: Record<string, unknown> = { a: 1 };
  value.self = value;
  return value;
};

/** Values msgpack cannot carry faithfully, with where the error must point. */
const UNSENDABLE: Array<[string, () => unknown, RegExp]> = [
  ['a symbol', () => Symbol('s'), /payload is a symbol/],
  ['a nested symbol', () => ({ user: { tag: Symbol('s') } }), /payload\.user\.tag is a symbol/],
  ['a function', () => ({ notify: () => 1 }), /payload\.notify is a function/],
  ['a function in an array', () => [1, () => 2], /payload\[1\] is a function/],
  ['a function as a Map value', () => new Map([['k', () => 1]]), /payload\.get\("k"\) is a function/],
  ['a symbol as a Map key', () => new Map([[Symbol('k'), 1]]), /payload\.get\(a symbol\) is a symbol/],
  ['a function in a Set', () => new Set([1, () => 2]), /payload \(Set item 1\) is a function/],
  ['a value that refers to itself', selfReferring, /payload\.self\.self.*nests deeper than \d+ levels \(or refers to itself\)/],
  ['an un-awaited Promise', () => ({ user: Promise.resolve({ id: 1 }) }), /payload\.user is a Promise \(or thenable\), which cannot be sent: await it first/],
  ['a WeakMap', () => ({ cache: new WeakMap() }), /payload\.cache is a WeakMap/],
  ['a WeakSet', () => [new WeakSet()], /payload\[0\] is a WeakSet/],
  ['an Error', () => ({ failure: new TypeError('bad input') }), /payload\.failure is an Error \(TypeError\)/],
  ['a RegExp', () => ({ pattern: /a+/g }), /payload\.pattern is a RegExp/],
  [
    'an instance whose data is in getters',
    () => {
      class Point {
        readonly #x = 1;
        get x(): number {
          return this.#x;
        }
      }
      return { at: new Point() };
    },
    /payload\.at is a Point with getters/,
  ],
  [
    'a getter that throws',
    () => ({
      get broken(): never {
        throw new Error('boom');
      },
    }),
    /payload\.broken could not be read \(boom\)/,
  ],
];

onEachRoute('values that cannot be sent', (options) => {
  let client: RedisClient;
  let listener: RedisClient;
  const received: unknown[] = [];

  before(async () => {
    client = new RedisClient(options('refusals'));
    listener = new RedisClient(options('listener'));
    await Promise.all([client.connect(), listener.connect()]);
    await listener.subscribe('refusals.t', (payload) => void received.push(payload));
  });
  after(async () => Promise.all([client.close(), listener.close()]));

  for (const [what, make, message] of UNSENDABLE) {
    it(`publish refuses ${what} with a ValidationError naming where it is, and sends nothing`, async () => {
      const error = await rejection(client.publish('refusals.t', make()));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/^cannot publish to "refusals\.t": /).and.match(message);
      expect(error.message.length).to.be.lessThan(400);
      // the next publish goes through alone: the refused one left nothing behind
      const before = received.length;
      expect(await client.publish('refusals.t', { ok: true })).to.equal(1);
      await until(() => received.length === before + 1);
      expect(received.at(-1)).to.deep.equal({ ok: true });
    });
  }

  it('publishes what msgpack does carry: bigints of any size, Dates, Buffers, Maps and Sets of plain values, undefined properties, null-prototype objects, class instances without getters', async () => {
    const before = received.length;
    class Reading {
      constructor(readonly value: number) {}
    }
    await client.publish('refusals.t', { big: 2n ** 200n, negative: -(2n ** 64n), at: new Date(0), bytes: Buffer.from([1]), map: new Map([['a', 1]]), set: new Set([1]), gone: undefined, bare: Object.assign(Object.create(null), { a: 1 }), reading: new Reading(3) });
    await until(() => received.length === before + 1);
    expect((received.at(-1) as { big: bigint }).big).to.equal(2n ** 200n);
    // a class instance without getters arrives as its own enumerable properties
    expect((received.at(-1) as { reading: unknown }).reading).to.deep.equal({ value: 3 });
  });

  it('set of a msgpack variable refuses a value holding a function (msgpack would drop it), naming the variable and the place', async () => {
    const Profile = defineVar({ name: 'refusalProfile', type: 'msgpack', owner: 'refusals', description: 'a profile' });
    const error = await rejection(client.set(Profile, { name: 'x', render: () => 'x' }));
    expect(error).to.be.instanceOf(ValidationError);
    expect(error.message).to.match(/variable "refusalProfile" expects a msgpack-able value \(value\.render is a function, which cannot be sent\)/);
    expect(await client.get(Profile)).to.equal(null);
  });

  it('a FIRE_AND_FORGET or BROADCAST query holding a function is refused before it is stored', async () => {
    const rpc = new RedisRPCClient({ client, queues: { requireKnownDestination: false } });
    await rpc.connect();
    try {
      for (const send of [() => rpc.fireAndForget('refusals', 'act', { cb: () => 1 }), () => rpc.broadcast('refusals', 'act', [Symbol('s')])]) {
        const error = await rejection(send());
        expect(error).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/query(\.cb|\[0\]) is a (function|symbol)/);
      }
      expect((await rpc.queueStatus('refusals')).fireAndForget.depth).to.equal(0);
    } finally {
      await rpc.close();
    }
  });

  it('an RPC argument holding a symbol is refused as before (one check serves events, variables, queries and calls)', async () => {
    const rpc = new RedisRPCClient({ client });
    await rpc.connect();
    try {
      const error = await rejection(rpc.callService('refusals', 'fn', { s: Symbol('s') }));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/arguments\[0\]\.s is a symbol/);
    } finally {
      await rpc.close();
    }
  });

  it('handlers that are not functions are refused at subscribe, psubscribe and watch, and nothing is subscribed', async () => {
    const Flag = defineVar({ name: 'refusalFlag', type: 'boolean', owner: 'refusals', description: 'a flag' });
    for (const handler of [undefined, null, 'log', 42, { handle: () => 1 }]) {
      for (const register of [
        () => client.subscribe('refusals.h', handler as never),
        () => client.psubscribe('refusals.*', handler as never),
        () => client.watch(Flag, handler as never),
      ]) {
        const error = await rejection(register());
        expect(error).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/the handler of (subscribe|psubscribe|watch) .* must be a function; received /);
      }
    }
    // nothing was subscribed: a publish reaches only the listener of refusals.t, not refusals.h
    expect(await client.publish('refusals.h', 1)).to.equal(0);
  });
});

describe('a custom codec that cannot encode a message', () => {
  it('rejects that publish with a ValidationError carrying the codec error as its cause; the others of the tick are sent', async () => {
    const base = new MsgpackCodec();
    const codec = {
      encode(value: unknown): Buffer {
        if (JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))?.includes('"refuse-me"')) throw new RangeError('refuse-me is not encodable here');
        return base.encode(value);
      },
      decode: (bytes: Buffer) => base.decode(bytes),
    };
    const deployment = new MemoryDeployment();
    const client = new RedisClient({ service: 'codec', codec, ...deployment.options });
    await client.connect();
    try {
      const [ok, refused] = await Promise.allSettled([client.publish('codec.t', 'fine'), client.publish('codec.t', 'refuse-me')]);
      expect(ok.status).to.equal('fulfilled');
      const error = (refused as PromiseRejectedResult).reason as ValidationError;
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/cannot be encoded: refuse-me is not encodable here/);
      expect(error.cause).to.be.instanceOf(RangeError);
      const Note = defineVar({ name: 'codecNote', type: 'msgpack', owner: 'codec', description: 'a note' });
      const refusedSet = await rejection(client.set(Note, { text: 'refuse-me' }));
      expect(refusedSet).to.be.instanceOf(ValidationError);
      expect(refusedSet.message).to.match(/variable "codecNote" expects a value its codec can encode; the codec refused an object: refuse-me is not encodable here/);
      expect(await client.get(Note)).to.equal(null);
    } finally {
      await client.close();
    }
  });
});

describe('the RPC and query handlers that are not functions', () => {
  it('are refused by expose, handle and implement with a ValidationError', async () => {
    const deployment = new MemoryDeployment();
    const rpc = new RedisRPCClient({ service: 'handlers', ...deployment.options });
    for (const handler of [undefined, 'fn', 3]) {
      expect(await rejection(rpc.expose('f', handler as never))).to.be.instanceOf(ValidationError);
      expect(thrown(() => rpc.handle('a', handler as never))).to.be.instanceOf(ValidationError);
    }
    const error = await rejection(rpc.implement({ scope: 'service', name: 'handlers', topic: 'service.handlers.rpc', functions: {} } as never, null as never));
    expect(error).to.be.instanceOf(ValidationError);
    await rpc.close();
  });
});

describe('option names nobody declared', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['RedisClient', () => new RedisClient({ service: 's', conectTimeoutMs: 100 } as never), /unknown RedisClient option "conectTimeoutMs"; did you mean "connectTimeoutMs"\?/],
    ['RedisClient (case)', () => new RedisClient({ service: 's', closetimeoutms: 100 } as never), /unknown RedisClient option "closetimeoutms"; did you mean "closeTimeoutMs"\?/],
    ['RedisClient limits', () => new RedisClient({ service: 's', limits: { maxPayloadByte: 10 } } as never), /unknown RedisClient option "limits\.maxPayloadByte"; did you mean "limits\.maxPayloadBytes"\?/],
    ['RedisClient registry', () => new RedisClient({ service: 's', registry: { heartbeat: 10 } } as never), /unknown RedisClient option "registry\.heartbeat"; did you mean "registry\.heartbeatMs"\?/],
    ['RedisClient durability (not an object)', () => new RedisClient({ service: 's', durability: 2 } as never), /RedisClient option durability must be an object; received 2/],
    ['RedisClient (nothing near)', () => new RedisClient({ service: 's', colour: 'red' } as never), /unknown RedisClient option "colour"; the options are service, instanceId, redis, .*registry, auth$/],
    ['RedisRPCClient', () => new RedisRPCClient({ service: 's', timeoutMS: 5 } as never), /unknown RedisRPCClient option "timeoutMS"; did you mean "timeoutMs"\?/],
    ['RedisRPCClient queues', () => new RedisRPCClient({ service: 's', queues: { maxAttempt: 2 } } as never), /unknown RedisRPCClient option "queues\.maxAttempt"; did you mean "queues\.maxAttempts"\?/],
    [
      'RedisRPCClient with client',
      () => new RedisRPCClient({ client: new RedisClient({ service: 's' }), namespace: 'x' } as never),
      /RedisRPCClient option "namespace" cannot be given with `client`: it is an option of that RedisClient/,
    ],
    ['RedisMutex', () => new RedisMutex({ redis: new RedisClient({ service: 's' }), waitMS: 5 } as never), /unknown RedisMutex option "waitMS"; did you mean "waitMs"\?/],
  ];
  for (const [what, construct, message] of cases) {
    it(`${what}: refused with a ValidationError naming the option`, () => {
      const error = thrown(construct);
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(message);
    });
  }

  it('the memory route of a test deployment and every documented option are accepted', () => {
    const deployment = new MemoryDeployment();
    expect(() => new RedisRPCClient({ service: 's', ...deployment.options, timeoutMs: 5, queues: { maxAttempts: 2 }, limits: { maxPayloadBytes: 2048 }, registry: { ttlMs: 9000 } })).not.to.throw();
  });

  it('per-call options: call, expose, subscribe, set, the query sends and acquire refuse a misspelt name', async () => {
    const deployment = new MemoryDeployment();
    const client = new RedisClient({ service: 'calls', ...deployment.options });
    const rpc = new RedisRPCClient({ client });
    const mutex = new RedisMutex({ redis: client });
    await rpc.connect();
    try {
      expect(thrown(() => rpc.with({ timeout: 5 } as never)).message).to.match(/unknown call option "timeout"; did you mean "timeoutMs"\?/);
      expect((await rejection(rpc.expose('f', () => 1, { modul: 'm' } as never))).message).to.match(/unknown expose option "modul"; did you mean "module"\?/);
      expect((await rejection(client.subscribe('t', () => undefined, { maxInflight: 2 } as never))).message).to.match(/unknown subscribe option "maxInflight"; did you mean "maxInFlight"\?/);
      expect((await rejection(mutex.acquire('m', { timeout: 5 } as never))).message).to.match(/unknown acquire option "timeout"; did you mean "timeoutMs"\?/);
      const Flag = defineVar({ name: 'refusalTtl', type: 'boolean', owner: 'calls', description: 'a flag' });
      expect((await rejection(client.set(Flag, true, { ttl: 5 } as never))).message).to.match(/unknown set option "ttl"; did you mean "ttlMs"\?/);
      expect(await client.get(Flag)).to.equal(null);
      expect((await rejection(rpc.fireAndForget('calls', 'a', null, { queryID: 'q' } as never))).message).to.match(/unknown fireAndForget option "queryID"; did you mean "queryId"\?/);
      expect((await rejection(rpc.broadcast('calls', 'a', null, { signal: AbortSignal.timeout(10) } as never))).message).to.match(/unknown broadcast option "signal"/);
      expect((await rejection(rpc.sendSync('calls', 'a', null, { timout: 5 } as never))).message).to.match(/unknown sendSync option "timout"; did you mean "timeoutMs"\?/);
      expect(thrown(() => rpc.sendAsync('calls', 'a', null, { timeoutMS: 5 } as never)).message).to.match(/unknown sendAsync option "timeoutMS"; did you mean "timeoutMs"\?/);
      expect((await rejection(rpc.send(QueryType.SYNC, 'calls', 'a', null, { sginal: 1 } as never))).message).to.match(/unknown send option "sginal"; did you mean "signal"\?/);
    } finally {
      await mutex.close();
      await rpc.close();
      await client.close();
    }
  });

  it('any name outside the declared ones is refused (property)', () => {
    // every option the client takes, from its own list: a hand-kept copy fell behind (`auth`) and failed when the property drew that name
    const declared = new Set(Object.keys(CLIENT_OPTION_NAMES));
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }).filter((name) => !declared.has(name) && name !== '__proto__'),
        (name) => {
          const error = thrown(() => new RedisClient({ service: 's', [name]: 1 } as never));
          return error instanceof ValidationError && error.message.includes(`unknown RedisClient option ${JSON.stringify(name)}`);
        },
      ),
    );
  });
});
