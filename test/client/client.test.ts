/**
 * RedisClient behaviour, run against the memory route and against Redis: the
 * client-level part of "same API and behaviour on every route".
 */
import { expect } from 'chai';
import { once } from 'node:events';
import Redis from 'ioredis';
import { RedisClient, type ReceivedEvent } from '../../src/client/RedisClient';
import type { RedisClientOptions } from '../../src/client/RedisClientOptions';
import { ConnectionError, MalformedMessageError, NotConnectedError, PayloadTooLargeError, ValidationError } from '../../src/errors/index';
import { encodeFrame, MsgpackCodec } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { defineCatalogue, defineVar } from '../../vars/define';
import { RedisVars } from '../../vars/RedisVars';
import { startRedis, type TestRedis } from '../support/redis-server';

/** An application's own catalogue, declared the way users do. */
const Shop = defineCatalogue('shop', {
  vars: {
    CartItems: defineVar({ name: 'CartItems', type: 'integer', owner: 'cart', keyed: true, keyDescription: 'cart id', description: 'Items in a cart' }),
    Banner: defineVar({ name: 'Banner', type: 'string', owner: 'cms', description: 'Text shown on the home page' }),
    Maintenance: defineVar({ name: 'Maintenance', type: 'boolean', owner: 'ops', description: 'Maintenance mode' }),
    Ratio: defineVar({ name: 'Ratio', type: 'number', owner: 'ops', description: 'A ratio' }),
    Logo: defineVar({ name: 'Logo', type: 'buffer', owner: 'cms', description: 'Logo bytes' }),
    Settings: defineVar({ name: 'Settings', type: 'msgpack', owner: 'ops', description: 'Rich settings' }),
  },
  topics: {},
});

interface RouteUnderTest {
  name: string;
  options(service: string): RedisClientOptions;
  injectRaw(channel: string, bytes: Buffer): Promise<void>;
  dispose(): Promise<void>;
}

async function memoryRoute(): Promise<RouteUnderTest> {
  const bus = new MemoryBus();
  return {
    name: 'memory',
    options: (service) => ({ service, route: 'memory', memoryBus: bus, registry: { heartbeatMs: 50, ttlMs: 300 } }),
    injectRaw: async (channel, bytes) => void bus.publish(channel, bytes),
    dispose: async () => undefined,
  };
}

async function redisRoute(): Promise<RouteUnderTest> {
  const redis: TestRedis = await startRedis();
  const raw = new Redis(redis.url);
  return {
    name: 'redis',
    options: (service) => ({ service, redis: redis.url, namespace: redis.namespace, registry: { heartbeatMs: 50, ttlMs: 300 } }),
    injectRaw: async (channel, bytes) => void (await raw.publish(channel, bytes)),
    dispose: async () => {
      raw.disconnect();
      await redis.stop();
    },
  };
}

function nextEvent<P = unknown>(client: RedisClient, topic: string): Promise<ReceivedEvent<P>> {
  return new Promise((resolve) => {
    void client.subscribe<P>(topic, (_payload, event) => resolve(event));
  });
}

for (const setup of [memoryRoute, redisRoute]) {
  describe(`RedisClient on the ${setup.name === memoryRoute.name ? 'memory' : 'redis'} route`, function () {
    this.timeout(20_000);
    let route: RouteUnderTest;
    let clients: RedisClient[];
    const client = async (service: string): Promise<RedisClient> => {
      const created = new RedisClient(route.options(service));
      clients.push(created);
      await created.connect();
      return created;
    };

    before(async () => {
      route = await setup();
    });
    after(async () => {
      await route.dispose();
    });
    beforeEach(() => {
      clients = [];
    });
    afterEach(async () => {
      await Promise.all(clients.map((c) => c.close()));
    });

    it('publishes events with seeds/004 headers and the payload as sent', async () => {
      const [users, audit] = [await client('users'), await client('audit')];
      let resolveEvent: (event: ReceivedEvent) => void = () => undefined;
      const received = new Promise<ReceivedEvent>((resolve) => (resolveEvent = resolve));
      await audit.subscribe('module.users.events', (_payload, event) => resolveEvent(event));
      const payload = { user: 'u-1', online: true, at: new Date(0), blob: Buffer.from('hi'), big: 12345678901234567890n, list: [1, [2, 3]] };
      expect(await users.publish('module.users.events', payload)).to.equal(1);
      const event = await received;
      expect(event.payload).to.deep.equal(payload);
      expect(event.topic).to.equal('module.users.events');
      expect(event.headers.name).to.equal('module.users.events');
      expect(event.headers.serviceName).to.equal('users');
      expect(Date.parse(event.headers.createdAt)).to.be.closeTo(Date.now(), 5000);
    });

    it('delivers pattern subscriptions with the matched pattern (audit.*)', async () => {
      const [flows, audit] = [await client('flows'), await client('audit')];
      const seen: Array<[string, string | undefined, unknown]> = [];
      let done: () => void = () => undefined;
      const all = new Promise<void>((resolve) => (done = resolve));
      await audit.psubscribe('audit.*', (payload, event) => {
        seen.push([event.topic, event.pattern, payload]);
        if (seen.length === 2) done();
      });
      await flows.publish('audit.flow.starting', { flow: 1 });
      await flows.publish('flow.starting', 'not audited');
      await flows.publish('audit.flow.started', { flow: 1 });
      await all;
      expect(seen).to.deep.equal([
        ['audit.flow.starting', 'audit.*', { flow: 1 }],
        ['audit.flow.started', 'audit.*', { flow: 1 }],
      ]);
    });

    it('stops delivering after unsubscribe', async () => {
      const [a, b] = [await client('a'), await client('b')];
      const unsubscribe = await b.subscribe('service.a.events', () => undefined);
      expect(await a.publish('service.a.events', 1)).to.equal(1);
      await unsubscribe();
      expect(await a.publish('service.a.events', 2)).to.equal(0);
    });

    it('shares typed variables: get, set with TTL, delete, all storage types', async () => {
      const [cms, web] = [await client('cms'), await client('web')];
      expect(await web.get(Shop.vars.Banner)).to.equal(null);
      await cms.set(Shop.vars.Banner, 'Sale!');
      expect(await web.get(Shop.vars.Banner)).to.equal('Sale!');
      await cms.set(Shop.vars.Maintenance, true);
      expect(await web.get(Shop.vars.Maintenance)).to.equal(true);
      await cms.set(Shop.vars.Ratio, 0.25);
      expect(await web.get(Shop.vars.Ratio)).to.equal(0.25);
      await cms.set(Shop.vars.Logo, Buffer.from([137, 80, 78, 71]));
      expect(await web.get(Shop.vars.Logo)).to.deep.equal(Buffer.from([137, 80, 78, 71]));
      const settings = { since: new Date(1000), limit: 2n ** 64n, nested: { list: [1, 'a'] } };
      await cms.set(Shop.vars.Settings, settings);
      expect(await web.get(Shop.vars.Settings)).to.deep.equal(settings);
      await cms.set(RedisVars.ServiceInfo, 'users', { port: 4040, hostname: 'h1' });
      expect(await web.get(RedisVars.ServiceInfo, 'users')).to.deep.equal({ port: 4040, hostname: 'h1' });
      expect(await web.delete(Shop.vars.Banner)).to.equal(true);
      expect(await web.get(Shop.vars.Banner)).to.equal(null);
      await cms.set(Shop.vars.Banner, 'flash', { ttlMs: 30 });
      const deadline = Date.now() + 2000;
      while ((await web.get(Shop.vars.Banner)) !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await web.get(Shop.vars.Banner)).to.equal(null);
    });

    it('reads a stored value that does not fit the type of its variable (written by hand) as a MalformedMessageError naming the key', async () => {
      const cart = await client('cart');
      const key = cart.names.variable('cart', 'CartItems', 'by-hand');
      await cart.route.set(key, 'three');
      const error = await cart.get(Shop.vars.CartItems, 'by-hand').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(MalformedMessageError);
      expect((error as MalformedMessageError).source).to.equal(key);
      expect((error as Error).message).to.match(/variable "CartItems" is not an integer/);
    });

    it('refuses a value of the wrong type with a ValidationError naming the variable, the type and the value', async () => {
      const cms = await client('cms');
      const attempts: Array<[() => Promise<unknown>, RegExp]> = [
        [() => cms.set(Shop.vars.Banner, 42 as unknown as string), /variable "Banner" expects a string; received 42/],
        [() => cms.set(Shop.vars.CartItems, 'c1', 1.5), /variable "CartItems" expects a safe integer; received 1.5/],
        [() => cms.set(Shop.vars.Maintenance, 'yes' as unknown as boolean), /variable "Maintenance" expects a boolean; received "yes"/],
        [() => cms.set(Shop.vars.Logo, 'bytes' as unknown as Buffer), /variable "Logo" expects a Buffer/],
        [() => cms.set(RedisVars.ServiceInfo, 'users', { when: new Date() }), /variable "ServiceInfo" expects a JSON value/],
        [() => cms.get(Shop.vars.CartItems, '' as string), /variable "CartItems" is keyed by cart id/],
        [() => (cms.get as (v: unknown, k: string) => Promise<unknown>)(Shop.vars.Banner, 'extra'), /variable "Banner" is not keyed/],
        [() => (cms.set as (v: unknown, value: unknown) => Promise<void>)(RedisVars.InstanceSet, Buffer.from('x')), /managed by intracom/],
      ];
      for (const [attempt, message] of attempts) {
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, String(message)).to.be.instanceOf(ValidationError);
        expect((error as Error).message).to.match(message);
      }
      expect(await cms.get(Shop.vars.Banner)).to.equal(null);
    });

    it('increments atomically: 200 concurrent increments from two clients give 200', async () => {
      const [a, b] = [await client('cart'), await client('cart')];
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).increment(Shop.vars.CartItems, 'cart-9')));
      expect(new Set(results).size).to.equal(200);
      expect(await a.get(Shop.vars.CartItems, 'cart-9')).to.equal(200);
      expect(await b.increment(Shop.vars.CartItems, 'cart-9', -50)).to.equal(150);
    });

    it('tells watchers of a set, an increment and a delete by another instance', async () => {
      const [writer, watcher] = [await client('auth'), await client('web')];
      const changes: unknown[] = [];
      let done: () => void = () => undefined;
      const three = new Promise<void>((resolve) => (done = resolve));
      await watcher.watch(
        RedisVars.UserLoginAttempts,
        (change) => {
          changes.push(change);
          if (changes.length === 3) done();
        },
        'user-1',
      );
      await writer.increment(RedisVars.UserLoginAttempts, 'user-2'); // another key: not watched
      await writer.increment(RedisVars.UserLoginAttempts, 'user-1');
      await writer.set(RedisVars.UserLoginAttempts, 'user-1', 5);
      await writer.delete(RedisVars.UserLoginAttempts, 'user-1');
      await three;
      expect(changes).to.deep.equal([
        { key: 'user-1', value: 1, secret: false, deleted: false, changedBy: 'auth', sender: { service: 'auth', verified: false } },
        { key: 'user-1', value: 5, secret: false, deleted: false, changedBy: 'auth', sender: { service: 'auth', verified: false } },
        { key: 'user-1', value: null, secret: false, deleted: true, changedBy: 'auth', sender: { service: 'auth', verified: false } },
      ]);
    });

    it('refuses a payload over the limit on publish and sends nothing', async () => {
      const small = new RedisClient({ ...route.options('small'), limits: { maxPayloadBytes: 1000, maxFrameBytes: 1000 } });
      clients.push(small);
      await small.connect();
      const listener = await client('listener');
      const delivered: unknown[] = [];
      await listener.subscribe('service.small.events', (payload) => void delivered.push(payload));
      const error = await small.publish('service.small.events', 'x'.repeat(2000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(PayloadTooLargeError);
      expect((error as Error).message).to.match(/over the limit of 1000 bytes/);
      const next = nextEvent(listener, 'service.small.events');
      await small.publish('service.small.events', 'fits');
      expect((await next).payload).to.equal('fits');
      expect(delivered).to.deep.equal(['fits']);
    });

    it('counts, reports and skips garbage and non-events from a foreign client, then delivers the next event', async () => {
      const [sender, receiver] = [await client('sender'), await client('receiver')];
      const delivered: unknown[] = [];
      let resolveValid: () => void = () => undefined;
      const valid = new Promise<void>((resolve) => (resolveValid = resolve));
      await receiver.subscribe('module.x.events', (payload) => {
        delivered.push(payload);
        resolveValid();
      });
      const malformed: MalformedMessageError[] = [];
      receiver.on('malformed', (error: MalformedMessageError) => malformed.push(error));
      const channel = receiver.names.channel('module.x.events');
      await route.injectRaw(channel, Buffer.from('\xc1 garbage bytes'));
      await route.injectRaw(channel, encodeFrame(new MsgpackCodec(), [{ not: 'an event' }]));
      await sender.publish('module.x.events', 'valid');
      await valid;
      expect(delivered).to.deep.equal(['valid']);
      expect(malformed).to.have.length(2);
      expect(malformed.every((e) => e instanceof MalformedMessageError)).to.equal(true);
      expect(receiver.stats().malformed).to.equal(1);
      expect(receiver.stats().invalidEvents).to.equal(1);
    });

    it('survives handlers that throw or reject', async () => {
      const [sender, receiver] = [await client('sender'), await client('receiver')];
      await receiver.subscribe('module.x.events', () => {
        throw new Error('sync bug');
      });
      await receiver.subscribe('module.x.events', async () => {
        throw new Error('async bug');
      });
      const next = nextEvent(receiver, 'module.x.events');
      await sender.publish('module.x.events', 1);
      await next;
      await sender.publish('module.x.events', 2);
      const deadline = Date.now() + 2000;
      while (receiver.stats().handlerErrors < 4 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      expect(receiver.stats().handlerErrors).to.equal(4);
    });

    it('lists live instances; a closed one leaves at once', async () => {
      const [one, two] = [await client('worker'), await client('worker')];
      const ids = (await one.instances()).map((i) => i.instanceId).sort();
      expect(ids).to.deep.equal([one.instanceId, two.instanceId].sort());
      const info = (await two.instances('worker')).find((i) => i.instanceId === one.instanceId);
      expect(info).to.include({ service: 'worker', pid: process.pid });
      expect(info?.version).to.match(/^\d+\.\d+\.\d+/);
      await two.close();
      expect((await one.instances()).map((i) => i.instanceId)).to.deep.equal([one.instanceId]);
    });

    it('rejects publish before connect and after close with NotConnectedError', async () => {
      const idle = new RedisClient(route.options('idle'));
      const before = await idle.publish('module.idle.events', 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(before).to.be.instanceOf(NotConnectedError);
      await idle.connect();
      await idle.close();
      const afterClose = await idle.publish('module.idle.events', 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(afterClose).to.be.instanceOf(NotConnectedError);
      expect(idle.status).to.equal('closed');
    });

    it('emits close once and tolerates a second close()', async () => {
      const c = new RedisClient(route.options('closing'));
      await c.connect();
      const closed = once(c, 'close');
      await Promise.all([c.close(), c.close()]);
      await closed;
    });
  });
}

describe('RedisClient options', () => {
  const invalid: Array<[string, unknown, RegExp]> = [
    ['no service', {}, /service must be .*received undefined/],
    ['bad service', { service: 'has space' }, /service must be .*received "has space"/],
    ['bad instanceId', { service: 's', instanceId: '' }, /instanceId must be .*received ""/],
    ['bad namespace', { service: 's', namespace: 'a*b' }, /namespace must be .*received "a\*b"/],
    ['bad limit', { service: 's', limits: { maxPayloadBytes: -1 } }, /limits.maxPayloadBytes must be a positive integer; received -1/],
    ['bad heartbeat', { service: 's', registry: { heartbeatMs: 0 } }, /registry.heartbeatMs must be a positive integer; received 0/],
    ['ttl under heartbeat', { service: 's', registry: { heartbeatMs: 1000, ttlMs: 500 } }, /registry.ttlMs must exceed registry.heartbeatMs \(1000\); received 500/],
    ['redis route without redis', { service: 's', route: 'redis' }, /route "redis" needs the redis option/],
    ['unknown route', { service: 's', route: 'mqtt' }, /route must be "redis", "memory" or a Route; received "mqtt"/],
    ['bad redis', { service: 's', redis: 6379 }, /redis must be a URL \(redis:\/\/ or rediss:\/\/ .*\), ioredis options, cluster seeds, or an ioredis Redis or Cluster; received 6379/],
    ['bad codec', { service: 's', codec: {} }, /codec must have encode\(\) and decode\(\)/],
  ];
  for (const [name, options, message] of invalid) {
    it(`refuses ${name} at construction`, () => {
      expect(() => new RedisClient(options as RedisClientOptions))
        .to.throw(ValidationError)
        .with.property('message')
        .that.matches(message);
    });
  }

  it('defaults to the memory route without a redis option and to redis with one', () => {
    expect(new RedisClient({ service: 's' }).route.kind).to.equal('memory');
    expect(new RedisClient({ service: 's', redis: 'redis://127.0.0.1:1' }).route.kind).to.equal('redis');
  });
});

describe('RedisClient without a reachable Redis', () => {
  it('rejects connect() at once with a ConnectionError naming the target, and closes cleanly', async () => {
    const client = new RedisClient({ service: 'lonely', redis: 'redis://127.0.0.1:1' });
    const started = Date.now();
    const error = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(ConnectionError);
    expect((error as Error).message).to.match(/could not connect to Redis at 127.0.0.1:1: .*ECONNREFUSED/);
    expect(Date.now() - started).to.be.lessThan(2000);
    expect(client.status).to.equal('idle');
    await client.close();
    expect(client.status).to.equal('closed');
  });
});
