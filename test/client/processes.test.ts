/**
 * RedisClient across separate processes and against a Redis that misbehaves:
 * what the foundation promises to a system of real services.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import Redis from 'ioredis';
import { RedisClient } from '../../src/client/RedisClient';
import { RedisVars } from '../../vars/RedisVars';
import { spawnPeer, type Peer } from '../support/processes';
import { startRedis, type TestRedis } from '../support/redis-server';

type Message = { ev: string; [field: string]: unknown };

describe('RedisClient across processes', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let admin: Redis;
  let peers: Peer[];
  let clients: RedisClient[];

  const peer = async (service: string, env: Record<string, string> = {}): Promise<Peer> => {
    const started = spawnPeer('test/client/peers/client-peer.ts', {
      TEST_REDIS_URL: redis.url,
      TEST_NAMESPACE: redis.namespace,
      TEST_SERVICE: service,
      ...env,
    });
    peers.push(started);
    await started.next<Message>((m) => m.ev === 'ready');
    return started;
  };
  const client = async (service: string, registry = { heartbeatMs: 200, ttlMs: 1000 }): Promise<RedisClient> => {
    const created = new RedisClient({ service, redis: redis.url, namespace: redis.namespace, registry });
    clients.push(created);
    await created.connect();
    return created;
  };

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });
  beforeEach(() => {
    peers = [];
    clients = [];
  });
  afterEach(async () => {
    await Promise.all(peers.map((p) => p.kill()));
    await Promise.all(clients.map((c) => c.close()));
  });

  it('sees the variables, watches and events of another process', async () => {
    const local = await client('users');
    const remote = await peer('audit');

    await remote.ask<Message>({ cmd: 'subscribe', topic: 'module.users.events' }, 'subscribed');
    await remote.ask<Message>({ cmd: 'watch' }, 'watching');

    const payload = { user: 'u-7', online: true, at: new Date(1234), big: 2n ** 65n, bytes: Buffer.from([1, 2]) };
    expect(await local.publish('module.users.events', payload)).to.equal(1);
    const event = await remote.next<Message>((m) => m.ev === 'event');
    expect(event.topic).to.equal('module.users.events');
    expect(event.headers).to.include({ name: 'module.users.events', serviceName: 'users' });
    const received = event.payload as Record<string, unknown>;
    expect(received.at).to.deep.equal(new Date(1234));
    expect(received.big).to.equal(2n ** 65n);
    expect(Buffer.from(received.bytes as Uint8Array)).to.deep.equal(Buffer.from([1, 2]));

    await local.increment(RedisVars.UserLoginAttempts, 'u-7');
    const change = await remote.next<Message>((m) => m.ev === 'change');
    expect(change.change).to.deep.equal({ key: 'u-7', value: 1, secret: false, deleted: false, changedBy: 'users', sender: { service: 'users', verified: false } });

    remote.send({ cmd: 'setServiceInfo', key: 'audit', value: { port: 8080 } });
    await remote.next<Message>((m) => m.ev === 'set');
    expect(await local.get(RedisVars.ServiceInfo, 'audit')).to.deep.equal({ port: 8080 });

    let resolveEvent: (payload: unknown) => void = () => undefined;
    const fromRemote = new Promise((resolve) => (resolveEvent = resolve));
    await local.subscribe('service.audit.events', (p) => resolveEvent(p));
    remote.send({ cmd: 'publish', topic: 'service.audit.events', payload: { logged: 3 } });
    expect(await fromRemote).to.deep.equal({ logged: 3 });
    expect((await remote.next<Message>((m) => m.ev === 'published')).receivers).to.equal(1);
  });

  it('gives exactly 100 after 100 concurrent increments from two processes', async () => {
    const [one, two] = [await peer('auth'), await peer('auth')];
    one.send({ cmd: 'increment', times: 50, key: 'race' });
    two.send({ cmd: 'increment', times: 50, key: 'race' });
    const [a, b] = await Promise.all([one.next<Message>((m) => m.ev === 'incremented'), two.next<Message>((m) => m.ev === 'incremented')]);
    const values = [...(a.values as number[]), ...(b.values as number[])];
    expect(new Set(values).size).to.equal(100);
    const local = await client('auth');
    expect(await local.get(RedisVars.UserLoginAttempts, 'race')).to.equal(100);
  });

  it('keeps delivering after the server kills the subscriber connection, with no duplicates', async () => {
    const [sender, receiver] = [await client('sender'), await client('receiver')];
    const received: number[] = [];
    let waiting: { count: number; resolve: () => void } | undefined;
    await receiver.subscribe('module.sender.events', (payload) => {
      received.push(payload as number);
      if (waiting && received.length >= waiting.count) waiting.resolve();
    });
    await receiver.psubscribe('module.sender.*', () => undefined);
    const receivedCount = (count: number) => new Promise<void>((resolve) => (waiting = { count, resolve }));

    const first = receivedCount(1);
    await sender.publish('module.sender.events', 0);
    await first;

    const reconnected = once(receiver, 'ready');
    const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(Number(killed)).to.be.greaterThan(0);
    await reconnected;

    const all = receivedCount(101);
    for (let i = 1; i <= 100; i++) expect(await sender.publish('module.sender.events', i)).to.equal(2);
    await all;
    const sentinel = receivedCount(102);
    await sender.publish('module.sender.events', -1);
    await sentinel;
    expect(received).to.deep.equal([0, ...Array.from({ length: 100 }, (_, i) => i + 1), -1]);
  });

  it('drops a SIGKILLed instance from instances() within the configured time, a closed one at once', async () => {
    const observer = await client('observer');
    const crashing = await peer('worker', { TEST_HEARTBEAT_MS: '100', TEST_TTL_MS: '800', TEST_INSTANCE_ID: 'crashing' });
    const closing = await peer('worker', { TEST_HEARTBEAT_MS: '100', TEST_TTL_MS: '800', TEST_INSTANCE_ID: 'closing' });
    const ids = async () => (await observer.instances('worker')).map((i) => i.instanceId).sort();
    expect(await ids()).to.deep.equal(['closing', 'crashing']);

    await closing.ask<Message>({ cmd: 'close' }, 'closed');
    expect(await ids()).to.deep.equal(['crashing']);

    await crashing.kill();
    const killedAt = Date.now();
    while ((await ids()).length > 0) {
      expect(Date.now() - killedAt, 'dropped out within ttl + one heartbeat').to.be.lessThan(800 + 100 + 200);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(Date.now() - killedAt).to.be.greaterThan(800 - 100 - 50);
  });

  it('keeps a client alive through a Redis restart and replays its subscriptions', async () => {
    const [sender, receiver] = [await client('sender'), await client('receiver')];
    const got: unknown[] = [];
    let resolveGot: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => (resolveGot = resolve));
    await receiver.subscribe('module.restart.events', (payload) => {
      got.push(payload);
      resolveGot();
    });
    // not events.once: it rejects on the 'error' a reconnect attempt emits while the server is down (a listener makes the client emit it)
    const ready = (client: RedisClient): Promise<void> => new Promise((resolve) => client.once('ready', () => resolve()));
    const back = Promise.all([ready(receiver), ready(sender)]);
    await redis.restart?.();
    await back;
    expect(await sender.publish('module.restart.events', 'after restart')).to.equal(1);
    await arrived;
    expect(got).to.deep.equal(['after restart']);
    // the heartbeat re-announces both instances on the new server
    const deadline = Date.now() + 3000;
    while ((await sender.instances('receiver')).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await sender.instances('receiver')).map((i) => i.instanceId)).to.deep.equal([receiver.instanceId]);
  });
});
