/**
 * The one conformance suite every route must pass: it is what makes "the same
 * API and behaviour on every route" (seeds/000) a proven statement.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { PROTOCOL_VERSION } from '../../src/envelope/codec';
import { MalformedMessageError, PayloadTooLargeError, ValidationError } from '../../src/errors/index';
import type { Route } from '../../src/route/Route';
import { MAX_NAMES_PER_CALL } from '../../src/route/SubscriptionTable';

/** What a route's test file supplies. */
export interface RouteHarness {
  /** A new connected route on the shared medium (same bus, or same Redis and namespace). */
  create(): Promise<Route>;
  /** Writes raw bytes to a channel as a foreign client would (redis-cli, another language). */
  injectRaw(channel: string, bytes: Buffer): Promise<void>;
  /** The channel-name prefix isolating this run. */
  prefix: string;
  /**
   * On a cluster, channels under `prefix` carry a hash tag and go through
   * sharded pub/sub, which patterns never see; pattern tests use channels
   * under this prefix instead (classic pub/sub), whose receiver count is a
   * lower bound: the subscribers of the one node that took the PUBLISH.
   */
  classic?: { prefix: string };
  /**
   * Under a service's generated ACL user: declares in the service's plan the
   * psubscribe patterns a test is about to use, and regenerates the user
   * (Redis 7 matches a PSUBSCRIBE pattern against `&` rules literally).
   */
  declarePatterns?(patterns: string[]): Promise<void>;
  /** Under a service's generated ACL user: the registry it may announce in, its own service's. */
  registryOwner?: string;
  /** Tears down what the harness started. */
  dispose(): Promise<void>;
}

/** Resolves once `count` messages arrived at the returned collector. */
function collector<T = unknown>(count: number) {
  const messages: T[] = [];
  const channels: string[] = [];
  let done: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => (done = resolve));
  return {
    messages,
    channels,
    arrived,
    listener: (message: unknown, channel: string) => {
      messages.push(message as T);
      channels.push(channel);
      if (messages.length === count) done();
    },
  };
}

/**
 * Registers, in the calling suite, the hooks every route suite needs: the
 * harness for the suite, fresh routes per test (closed after it), and a name
 * builder unique to each test. `make()` and `name()` are valid inside tests.
 */
export function useRoutes(
  setup: () => Promise<RouteHarness>,
  scope = '',
): { make: () => Promise<Route>; name: (suffix: string) => string; plain: (suffix: string) => string; counted: (actual: number, expected: number) => void; harness: () => RouteHarness } {
  let harness: RouteHarness;
  let routes: Route[] = [];
  let run = '';
  before(async () => {
    harness = await setup();
  });
  after(async () => {
    await harness.dispose();
  });
  beforeEach(() => {
    routes = [];
    run = Math.random().toString(36).slice(2, 8);
  });
  afterEach(async () => {
    await Promise.all(routes.map((route) => route.close()));
  });
  return {
    async make() {
      const route = await harness.create();
      routes.push(route);
      return route;
    },
    name: (suffix) => `${harness.prefix}${scope}${run}.${suffix}`,
    plain: (suffix) => `${harness.classic?.prefix ?? harness.prefix}${scope}${run}.${suffix}`,
    counted: (actual, expected) => {
      if (harness.classic === undefined) expect(actual).to.equal(expected);
      else expect(actual).to.be.within(0, expected);
    },
    harness: () => harness,
  };
}

export function routeConformance(name: string, setup: () => Promise<RouteHarness>): void {
  describe(`route conformance: ${name}`, function () {
    this.timeout(20_000);
    const { make, name: ch, plain, counted, harness } = useRoutes(setup);

    it('is ready after connect and reports its kind', async () => {
      const route = await make();
      expect(route.status).to.equal('ready');
      expect(['memory', 'redis']).to.include(route.kind);
    });

    it('returns 0 receivers when nobody subscribes', async () => {
      const route = await make();
      expect(await route.publish(ch('nobody'), { hello: 1 })).to.equal(0);
    });

    it('counts exact subscribers of channels, never pattern subscribers (unlike the receivers of publish)', async () => {
      const [watcher, owner, asker] = [await make(), await make(), await make()];
      await harness().declarePatterns?.([`${ch('')}*`]);
      await watcher.psubscribe(`${ch('')}*`, () => undefined);
      // on a cluster `owned` is a shard channel, which no pattern receives
      expect(await asker.publish(ch('owned'), { hello: 1 })).to.equal(harness().classic === undefined ? 1 : 0);
      expect(await asker.channelSubscribers([ch('owned'), ch('other')])).to.deep.equal([0, 0]);
      const unsubscribe = await owner.subscribe(ch('owned'), () => undefined);
      await watcher.subscribe(ch('owned'), () => undefined);
      expect(await asker.channelSubscribers([ch('owned'), ch('other')])).to.deep.equal([2, 0]);
      await unsubscribe();
      expect(await asker.channelSubscribers([ch('owned')])).to.deep.equal([1]);
      expect(await asker.channelSubscribers([])).to.deep.equal([]);
    });

    it('delivers to a subscriber on another connection and counts it', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(1);
      await subscriber.subscribe(ch('one'), got.listener);
      expect(await publisher.publish(ch('one'), { hello: 'world' })).to.equal(1);
      await got.arrived;
      expect(got.messages).to.deep.equal([{ hello: 'world' }]);
      expect(got.channels).to.deep.equal([ch('one')]);
    });

    it('keeps payload types: Buffer, Date, integers, floats, bigint, null, nested objects and arrays, unicode', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector<Record<string, unknown>>(1);
      await subscriber.subscribe(ch('types'), got.listener);
      const sent = {
        buffer: Buffer.from([0, 1, 2, 255]),
        date: new Date('2026-01-02T03:04:05.678Z'),
        integer: 42,
        negative: -7,
        large: 2 ** 40,
        float: 1.25,
        big: 2n ** 70n,
        smallBig: 5n,
        nil: null,
        nested: { a: { b: [1, 'two', { three: true }] } },
        list: [1, 2, 3],
        text: 'héllo ✓ 日本',
      };
      await publisher.publish(ch('types'), sent);
      await got.arrived;
      const received = got.messages[0];
      expect(Buffer.isBuffer(received.buffer)).to.equal(true);
      expect(received.date).to.be.instanceOf(Date);
      expect(Number.isInteger(received.integer)).to.equal(true);
      expect(typeof received.big).to.equal('bigint');
      expect(typeof received.smallBig).to.equal('bigint');
      expect(received).to.deep.equal(sent);
    });

    it('gives several listeners of one channel every message, over one subscription', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const first = collector(1);
      const second = collector(1);
      await subscriber.subscribe(ch('many'), first.listener);
      await subscriber.subscribe(ch('many'), second.listener);
      expect(await publisher.publish(ch('many'), 'x')).to.equal(1);
      await Promise.all([first.arrived, second.arrived]);
      expect(first.messages).to.deep.equal(['x']);
      expect(second.messages).to.deep.equal(['x']);
    });

    it('unsubscribes one listener at a time and drops the subscription with the last', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const kept = collector(1);
      const dropped: unknown[] = [];
      const stopKept = await subscriber.subscribe(ch('unsub'), kept.listener);
      const stopDropped = await subscriber.subscribe(ch('unsub'), (m) => dropped.push(m));
      await stopDropped();
      expect(await publisher.publish(ch('unsub'), 1)).to.equal(1);
      await kept.arrived;
      expect(dropped).to.deep.equal([]);
      await stopKept();
      expect(await publisher.publish(ch('unsub'), 2)).to.equal(0);
    });

    it('subscribes and unsubscribes many channels made in one tick, across backend calls, keeping the order of calls on one channel', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const count = 2 * MAX_NAMES_PER_CALL + 50;
      const names = Array.from({ length: count }, (_, i) => ch(`bulk.${i}`));
      const heard = new Set<string>();
      const stops = await Promise.all(names.map((channel) => subscriber.subscribe(channel, (_m, c) => heard.add(c))));
      for (const i of [0, MAX_NAMES_PER_CALL, count - 1]) expect(await publisher.publish(names[i], i)).to.equal(1);
      // within one tick: the last channel unsubscribed, then subscribed again; the first subscribed twice, then one listener dropped
      const again = collector(1);
      const stopLast = stops.pop() as () => Promise<void>;
      const unsubscribed = stopLast();
      const resubscribed = subscriber.subscribe(names[count - 1], again.listener);
      const extra = subscriber.subscribe(names[0], () => undefined);
      await Promise.all([unsubscribed, resubscribed, extra]);
      expect(await publisher.publish(names[count - 1], 'again')).to.equal(1);
      await again.arrived;
      await Promise.all(stops.slice(1).map((stop) => stop()));
      for (const i of [1, MAX_NAMES_PER_CALL, count - 2]) expect(await publisher.publish(names[i], i)).to.equal(0);
      expect(await publisher.publish(names[0], 'first')).to.equal(1);
    });

    it('subscribes many channels with one listener and one unsubscribe (a channel listed twice counts once), beside single listeners of the same channels', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const count = MAX_NAMES_PER_CALL + 10;
      const names = Array.from({ length: count }, (_, i) => ch(`many.${i}`));
      const single = collector(1);
      const stopSingle = await subscriber.subscribe(names[1], single.listener);
      const heard = new Map<string, unknown>();
      let done: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (done = resolve));
      const stop = await subscriber.subscribeMany([...names, names[0], names[count - 1]], (message, channel) => {
        expect(heard.has(channel), `a second message on ${channel}`).to.equal(false);
        heard.set(channel, message);
        if (heard.size === 4) done();
      });
      for (const i of [0, MAX_NAMES_PER_CALL, count - 1]) counted(await publisher.publish(names[i], i), 1);
      counted(await publisher.publish(names[1], 'both'), 1); // one connection, two listeners
      await Promise.all([single.arrived, arrived]);
      expect([...heard].sort()).to.deep.equal([
        [names[0], 0],
        [names[1], 'both'],
        [names[MAX_NAMES_PER_CALL], MAX_NAMES_PER_CALL],
        [names[count - 1], count - 1],
      ].sort());
      await stop();
      await stop(); // a second call does nothing
      expect(await publisher.publish(names[0], 'late')).to.equal(0);
      // the single listener of a channel of the call keeps its subscription
      counted(await publisher.publish(names[1], 'single'), 1);
      await stopSingle();
      expect(await subscriber.subscribeMany([], () => undefined).then((unsubscribe) => unsubscribe())).to.equal(undefined);
    });

    it('matches patterns with Redis glob rules and names the pattern', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const received: Array<[unknown, string, string]> = [];
      let done: () => void = () => undefined;
      const arrived = new Promise<void>((resolve) => (done = resolve));
      const pattern = plain('audit.*');
      await harness().declarePatterns?.([pattern]);
      await subscriber.psubscribe(pattern, (message, channel, matched) => {
        received.push([message, channel, matched]);
        if (received.length === 2) done();
      });
      counted(await publisher.publish(plain('audit.login'), 'a'), 1);
      expect(await publisher.publish(plain('other.login'), 'ignored')).to.equal(0);
      counted(await publisher.publish(plain('audit.flow.started'), 'b'), 1);
      await arrived;
      expect(received).to.deep.equal([
        ['a', plain('audit.login'), pattern],
        ['b', plain('audit.flow.started'), pattern],
      ]);
    });

    it('treats glob characters in an exact subscription literally', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(1);
      await subscriber.subscribe(ch('literal.*'), got.listener);
      expect(await publisher.publish(ch('literal.x'), 'no')).to.equal(0);
      expect(await publisher.publish(ch('literal.*'), 'yes')).to.equal(1);
      await got.arrived;
      expect(got.messages).to.deep.equal(['yes']);
    });

    it('counts an exact and a matching pattern subscription as two receivers', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const exact = collector(1);
      const viaPattern = collector(1);
      await subscriber.subscribe(plain('both.x'), exact.listener);
      await harness().declarePatterns?.([plain('both.*')]);
      await subscriber.psubscribe(plain('both.*'), viaPattern.listener);
      counted(await publisher.publish(plain('both.x'), 'm'), 2);
      await Promise.all([exact.arrived, viaPattern.arrived]);
    });

    it('keeps order per channel within a tick, across ticks and across split frames', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const total = 3000;
      const got = collector<{ i: number; pad: string }>(total);
      await subscriber.subscribe(ch('order'), got.listener);
      const before = publisher.stats().framesSent;
      const pad = 'x'.repeat(300); // 3000 x ~300 bytes forces several frames of at most maxFrameBytes
      const sends: Array<Promise<number>> = [];
      for (let i = 0; i < total / 2; i++) sends.push(publisher.publish(ch('order'), { i, pad }));
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = total / 2; i < total; i++) sends.push(publisher.publish(ch('order'), { i, pad }));
      await Promise.all(sends);
      await got.arrived;
      expect(got.messages.map((m) => m.i)).to.deep.equal(Array.from({ length: total }, (_, i) => i));
      const frames = publisher.stats().framesSent - before;
      expect(frames).to.be.greaterThan(2);
      expect(frames).to.be.lessThan(total / 10);
    });

    it('factors consecutive messages of one group into one { headers, payloads } message, keeping order with the rest', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(4);
      await subscriber.subscribe(ch('group'), got.listener);
      const headers = { name: 'g', createdAt: '2026-01-01T00:00:00.000Z', serviceName: 's' };
      const other = { ...headers, name: 'h' };
      const sends = [
        publisher.publish(ch('group'), 'plain-1'),
        publisher.publish(ch('group'), 1, headers),
        publisher.publish(ch('group'), 2, headers),
        publisher.publish(ch('group'), 3, other),
        publisher.publish(ch('group'), 'plain-2'),
      ];
      expect(await Promise.all(sends)).to.deep.equal([1, 1, 1, 1, 1]);
      await got.arrived;
      expect(got.messages).to.deep.equal(['plain-1', { headers, payloads: [1, 2] }, { headers: other, payloads: [3] }, 'plain-2']);
    });

    it('reports each posted message to its callback with its context, and sends a slice as soon as it is full', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(5);
      await subscriber.subscribe(ch('post'), got.listener);
      const outcomes: Array<[string, unknown, number | undefined]> = [];
      let reported: () => void = () => undefined;
      const allReported = new Promise<void>((resolve) => (reported = resolve));
      const done = (context: string, error: unknown, receivers: number | undefined) => {
        outcomes.push([context, error, receivers]);
        if (outcomes.length === 5) reported();
      };
      const before = publisher.stats().framesSent;
      for (let i = 0; i < 5; i++) {
        publisher.post(ch('post'), i, undefined, `m${i}`, done, 2);
        // a full slice leaves at once, within the tick: two messages per frame so far, the rest still queued
        expect(publisher.stats().framesSent - before).to.equal(Math.floor((i + 1) / 2));
      }
      await allReported;
      expect(publisher.stats().framesSent - before).to.equal(3);
      expect(outcomes.map(([context]) => context).sort()).to.deep.equal(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(outcomes.every(([, error, receivers]) => error === undefined && receivers === 1)).to.equal(true);
      await got.arrived;
      expect(got.messages).to.deep.equal([0, 1, 2, 3, 4]);
    });

    it('tells every message of a frame even when one callback throws, and leaves no unhandled rejection', async () => {
      const publisher = await make();
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const told: string[] = [];
        let reported: () => void = () => undefined;
        const both = new Promise<void>((resolve) => (reported = resolve));
        const done = (context: string) => {
          told.push(context);
          if (told.length === 2) reported();
          if (context === 'first') throw new Error('a callback that throws');
        };
        publisher.post(ch('throws'), 1, undefined, 'first', done);
        publisher.post(ch('throws'), 2, undefined, 'second', done);
        await both;
        await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection is reported after the microtasks of its turn
        expect(told).to.deep.equal(['first', 'second']);
        expect(unhandled).to.deep.equal([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('sends a lone message at the end of its tick: waiting for no batch, and for no timer or I/O turn', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(2);
      await subscriber.subscribe(ch('lone'), got.listener);
      for (const send of [() => void publisher.publish(ch('lone'), 'published'), () => publisher.post(ch('lone'), 'posted', undefined, undefined, () => undefined, 32)]) {
        const before = publisher.stats().framesSent;
        send();
        expect(publisher.stats().framesSent, 'not before the tick ends: the tick may send more').to.equal(before);
        await Promise.resolve(); // the microtasks queued before this one have run: the end of the tick that sent it
        expect(publisher.stats().framesSent, 'written at the end of its tick').to.equal(before + 1);
      }
      await got.arrived;
      expect(got.messages).to.deep.equal(['published', 'posted']);
    });

    it('reports a refused posted message to its callback, not as a rejection', async () => {
      const publisher = await make();
      const outcome = await new Promise<[unknown, number | undefined]>((resolve) =>
        publisher.post(ch('post-big'), Buffer.alloc(2 * 1024 * 1024), undefined, undefined, (_context, error, receivers) => resolve([error, receivers])),
      );
      expect(outcome[0]).to.be.instanceOf(PayloadTooLargeError);
      expect(outcome[1]).to.equal(undefined);
    });

    it('refuses an oversized message with PayloadTooLargeError and still sends the rest of the tick', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(2);
      await subscriber.subscribe(ch('big'), got.listener);
      const small1 = publisher.publish(ch('big'), 'before');
      const huge = publisher.publish(ch('big'), Buffer.alloc(2 * 1024 * 1024));
      const small2 = publisher.publish(ch('big'), 'after');
      const error = await huge.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).limit).to.equal(1024 * 1024);
      expect(await small1).to.equal(1);
      expect(await small2).to.equal(1);
      await got.arrived;
      expect(got.messages).to.deep.equal(['before', 'after']);
    });

    it('counts, reports and skips garbage from a foreign client, then delivers the next message', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(1);
      await subscriber.subscribe(ch('garbage'), got.listener);
      const reported = once(subscriber, 'malformed');
      await harness().injectRaw(ch('garbage'), Buffer.from('definitely not msgpack \xc1\xc1'));
      await harness().injectRaw(ch('garbage'), Buffer.from([0x93, 0x07, 0x01, 0x02])); // a frame of an unknown version
      const [error] = (await reported) as [MalformedMessageError];
      expect(error).to.be.instanceOf(MalformedMessageError);
      expect(error.source).to.equal(ch('garbage'));
      await publisher.publish(ch('garbage'), 'valid');
      await got.arrived;
      expect(got.messages).to.deep.equal(['valid']);
      expect(subscriber.stats().malformed).to.equal(2);
    });

    it('accepts a one-message frame written by a foreign client', async () => {
      const subscriber = await make();
      const got = collector(1);
      await subscriber.subscribe(ch('foreign'), got.listener);
      // msgpack of [4, {"a": 1}] as any msgpack library would write it
      await harness().injectRaw(ch('foreign'), Buffer.from([0x92, PROTOCOL_VERSION, 0x81, 0xa1, 0x61, 0x01]));
      await got.arrived;
      expect(got.messages).to.deep.equal([{ a: 1 }]);
    });

    it('reads a foreign frame exactly as msgpack says, whatever came before it: integers 0-255, and the 12-byte frame that redefined a record slot', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(257);
      await subscriber.subscribe(ch('plain'), got.listener);
      const reported = once(subscriber, 'malformed');
      // a version-2 frame defining msgpackr record 0x43 (["x", "y"]): it once replaced a predefined shape for the life of the process
      await harness().injectRaw(ch('plain'), Buffer.from('9202d47243' + '92a178a179' + '0102', 'hex'));
      const [error] = (await reported) as [MalformedMessageError];
      expect(error.message).to.match(/version 2/);
      // [4, 0, 1, ..., 255] as a plain writer encodes it: 0x40-0x7f are positive fixints, 128-255 are 0xcc nn
      const integers = Array.from({ length: 256 }, (_, i) => i);
      const bytes = [0xdc, 0x01, 0x01, PROTOCOL_VERSION, ...integers.flatMap((i) => (i < 0x80 ? [i] : [0xcc, i]))];
      await harness().injectRaw(ch('plain'), Buffer.from(bytes));
      await publisher.publish(ch('plain'), { after: 'the foreign frames' });
      await got.arrived;
      expect(got.messages).to.deep.equal([...integers, { after: 'the foreign frames' }]);
      expect(subscriber.stats().malformed).to.equal(1);
    });

    it('delivers on later turns of the event loop: a ping-pong between two routes lets a timer fire', async () => {
      const [a, b] = [await make(), await make()];
      const cap = 200_000; // a ping-pong that never yields ends here, and the timer below fires only then
      let exchanges = 0;
      let stopped = false;
      await a.subscribe(ch('ping'), (n) => {
        exchanges += 1;
        if (!stopped && exchanges < cap) void a.publish(ch('pong'), (n as number) + 1);
      });
      await b.subscribe(ch('pong'), (n) => {
        if (!stopped) void b.publish(ch('ping'), (n as number) + 1);
      });
      await b.publish(ch('ping'), 0);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const atTimer = exchanges;
      stopped = true;
      expect(atTimer).to.be.greaterThan(0);
      expect(atTimer, 'the timer had to wait for the ping-pong to end').to.be.below(cap);
    });

    it('keeps delivering when a listener throws', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(2);
      await subscriber.subscribe(ch('throws'), () => {
        throw new Error('listener bug');
      });
      await subscriber.subscribe(ch('throws'), got.listener);
      await publisher.publish(ch('throws'), 1);
      await publisher.publish(ch('throws'), 2);
      await got.arrived;
      expect(got.messages).to.deep.equal([1, 2]);
    });

    it('stores, reads, overwrites and deletes keys', async () => {
      const [a, b] = [await make(), await make()];
      const key = ch('key');
      expect(await a.get(key)).to.equal(null);
      await a.set(key, Buffer.from([1, 2, 3]));
      expect(await b.get(key)).to.deep.equal(Buffer.from([1, 2, 3]));
      await b.set(key, 'text');
      expect((await a.get(key))?.toString()).to.equal('text');
      expect(await a.del(key)).to.equal(1);
      expect(await a.del(key)).to.equal(0);
      expect(await b.get(key)).to.equal(null);
    });

    it('expires keys after their TTL', async () => {
      const route = await make();
      const key = ch('ttl');
      await route.set(key, 'soon gone', 40);
      expect((await route.get(key))?.toString()).to.equal('soon gone');
      const deadline = Date.now() + 2000;
      while ((await route.get(key)) !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await route.get(key)).to.equal(null);
    });

    it('increments atomically and refuses a non-integer value', async () => {
      const [a, b] = [await make(), await make()];
      const key = ch('counter');
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).incrBy(key, 1)));
      expect(new Set(results).size).to.equal(50);
      expect(Number((await a.get(key))?.toString())).to.equal(50);
      expect(await a.incrBy(key, -10)).to.equal(40);
      await a.set(ch('not-a-number'), 'abc');
      const refused = await a.incrBy(ch('not-a-number'), 1).then(() => undefined, (error: unknown) => error);
      expect(refused).to.be.instanceOf(MalformedMessageError);
      expect((await a.get(ch('not-a-number')))?.toString()).to.equal('abc');
    });

    it('refuses an increment past the safe integers with ValidationError and changes nothing; resolves the last safe one exactly', async () => {
      const route = await make();
      const key = ch('edge');
      await route.set(key, String(Number.MAX_SAFE_INTEGER - 1));
      expect(await route.incrBy(key, 1, 60_000)).to.equal(Number.MAX_SAFE_INTEGER);
      const refused = await route.incrBy(key, 1).then(() => undefined, (error: unknown) => error);
      expect(refused).to.be.instanceOf(ValidationError);
      expect((refused as Error).message).to.include('would make it 9007199254740992');
      expect((await route.get(key))?.toString()).to.equal(String(Number.MAX_SAFE_INTEGER));
    });

    it('lists the keys matching a glob pattern, from any route of the medium', async () => {
      const [a, b] = [await make(), await make()];
      await Promise.all([a.set(ch('scan.one'), '1'), a.set(ch('scan.two'), '2'), a.set(ch('other'), '3')]);
      expect((await b.keys(ch('scan.*'))).sort()).to.deep.equal([ch('scan.one'), ch('scan.two')]);
      expect(await b.keys(ch('nothing.*'))).to.deep.equal([]);
    });

    it('names its medium in the contract (what the mutex builds its lock store on): its kind, and the shared connection or bus', async () => {
      const [a, b] = [await make(), await make()];
      expect(a.medium.kind).to.equal(a.kind);
      if (a.medium.kind === 'memory' && b.medium.kind === 'memory') expect(a.medium.bus).to.equal(b.medium.bus);
      if (a.medium.kind === 'redis') expect(typeof a.medium.connection.set).to.equal('function');
    });

    it('appends the messages of one tick to a stream as one entry of at most perEntry messages, in order', async () => {
      const route = await make();
      const stream = ch('appended');
      const ids = await Promise.all([1, 2, 3, 4, 5].map((n) => route.streamAppend(stream, { n }, 2)));
      expect(new Set(ids).size).to.equal(3);
      const entries = await route.streamRange(stream, '-', '+', 10);
      expect(entries.map((entry) => entry.id)).to.deep.equal([...new Set(ids)]);
    });

    it('lists announced instances, forgets a withdrawn one at once and an expired one after its TTL', async () => {
      const [a, b] = [await make(), await make()];
      const service = harness().registryOwner ?? ch('svc').replace(/[^A-Za-z0-9_.-]/g, '_');
      await a.announce(service, 'i1', Buffer.from('one'), 10_000);
      await b.announce(service, 'i2', Buffer.from('two'), 60);
      const listed = (await a.liveInstances(service)).map(String).sort();
      expect(listed).to.deep.equal(['one', 'two']);
      await a.withdraw(service, 'i1');
      expect((await b.liveInstances(service)).map(String)).to.deep.equal(['two']);
      const deadline = Date.now() + 2000;
      while ((await a.liveInstances(service)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await a.liveInstances(service)).to.deep.equal([]);
    });

    it('closes cleanly with subscriptions open and queued messages flushed', async () => {
      const [publisher, subscriber] = [await make(), await make()];
      const got = collector(1);
      await subscriber.subscribe(ch('close'), got.listener);
      const sent = publisher.publish(ch('close'), 'last words');
      await publisher.close();
      expect(await sent).to.equal(1);
      await got.arrived;
      expect(publisher.status).to.equal('closed');
    });
  });
}
