/**
 * One instance id, one live process. Durable query claims are held by the
 * instance id, so two processes under one id (a rolling restart that keeps
 * it, as BROADCAST catch-up asks) cannot tell each other's claims apart and
 * run queries twice. connect() therefore waits for the other process to leave
 * (close, or expire after registry.ttlMs), atomically with its announcement,
 * and gives up with InstanceIdInUseError after registry.instanceIdWaitMs.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { RedisClient } from '../../src/client/RedisClient';
import { InstanceIdInUseError } from '../../src/errors/InstanceIdInUseError';
import { NotConnectedError } from '../../src/errors/NotConnectedError';
import { announceScript } from '../../src/route/registryScripts';
import { MemoryDeployment } from '../../src/testing/index';
import { Names } from '../../vars/names';
import { spawnPeer, type Peer } from '../support/processes';
import { rejection, until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

type Message = { ev: string };
const REGISTRY = { heartbeatMs: 200, ttlMs: 1000 };

/** A logger whose lines the test can wait for. */
function capturingLogger(): { logger: pino.Logger; lines: Array<{ msg: string; [field: string]: unknown }> } {
  const lines: Array<{ msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const WAITING = 'another live process holds this instance id; waiting for it to close or expire before starting (registry.instanceIdWaitMs)';

describe('one live process per instance id', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let admin: Redis;
  let clients: Array<RedisRPCClient | RedisClient>;
  let peers: Peer[];
  let service: string;
  let counter = 0;

  const rpc = (options: { instanceId?: string; logger?: pino.Logger; registry?: { heartbeatMs?: number; ttlMs?: number; instanceIdWaitMs?: number } } = {}): RedisRPCClient => {
    const client = new RedisRPCClient({ service, instanceId: 'x', redis: redis.url, namespace: redis.namespace, registry: REGISTRY, queues: { blockMs: 100 }, ...options });
    client.handle('job', () => undefined);
    clients.push(client);
    return client;
  };

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
  });
  beforeEach(() => {
    clients = [];
    peers = [];
    service = `svc${++counter}`;
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(peers.map((p) => p.kill()));
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  it('a second client under the same id waits while the first is live, and starts once it closes', async () => {
    const first = rpc();
    await first.connect();
    const { logger, lines } = capturingLogger();
    const second = rpc({ logger });
    let connected = false;
    const connecting = second.connect().then(() => void (connected = true));
    await until(() => lines.some((line) => line.msg === WAITING), 5000, 'the second to see the id taken');
    const waiting = lines.find((line) => line.msg === WAITING) as unknown as { holder: { pid: number; startedAt: number } };
    const [announced] = await first.client.instances();
    expect(waiting.holder).to.include({ pid: process.pid, startedAt: announced.startedAt });
    // a heartbeat of the first passes: it stays the one announced, and the second has not started
    const instanceSet = new Names(redis.namespace).instanceSet(service);
    const score = await admin.zscore(instanceSet, 'x');
    await until(async () => (await admin.zscore(instanceSet, 'x')) !== score, 2000, 'a heartbeat of the first');
    expect(connected).to.equal(false);
    await first.close();
    const closedAt = performance.now();
    await connecting;
    expect(performance.now() - closedAt, 'a graceful close is seen within a retry (100 ms)').to.be.below(600);
    const live = await second.client.instances();
    expect(live).to.have.length(1);
    expect(live[0].startedAt).to.not.equal(announced.startedAt);
  });

  it('past registry.instanceIdWaitMs: InstanceIdInUseError, and the holder keeps its entry', async () => {
    const first = rpc();
    await first.connect();
    const second = rpc({ registry: { ...REGISTRY, instanceIdWaitMs: 400 } });
    const startedAt = performance.now();
    const error = await rejection(second.connect());
    expect(performance.now() - startedAt).to.be.within(350, 2000);
    expect(error).to.be.instanceOf(InstanceIdInUseError);
    const typed = error as InstanceIdInUseError;
    expect(typed.code).to.equal('ERR_INSTANCE_ID_IN_USE');
    expect(typed).to.include({ service, instanceId: 'x', waitMs: 400 });
    expect(typed.holder).to.include({ pid: process.pid });
    expect(typed.message).to.contain('registry.instanceIdWaitMs');
    expect(typed.message, 'the holder is a client of this same process, and the message says so').to.contain('held by another client of this process (host ');
    // closing the refused one withdraws nothing: the first is still listed, and still consumes
    await second.close();
    expect((await first.client.instances()).map((i) => i.instanceId)).to.deep.equal(['x']);
  });

  it('0 refuses at once; an invalid value is a ValidationError naming the option', async () => {
    const first = rpc();
    await first.connect();
    const error = await rejection(rpc({ registry: { ...REGISTRY, instanceIdWaitMs: 0 } }).connect());
    expect(error).to.be.instanceOf(InstanceIdInUseError);
    expect(() => new RedisClient({ service, redis: redis.url, registry: { instanceIdWaitMs: -1 } })).to.throw(/registry\.instanceIdWaitMs .*received -1/);
  });

  it('two clients connecting at the same moment: exactly one gets the id', async () => {
    const contenders = [0, 1, 2, 3].map(() => rpc({ registry: { ...REGISTRY, instanceIdWaitMs: 300 } }));
    const outcomes = await Promise.allSettled(contenders.map((c) => c.connect()));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).to.have.length(1);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).to.be.instanceOf(InstanceIdInUseError);
    expect(await contenders[0].client.instances()).to.have.length(1);
  });

  it('close() during the wait: connect rejects with NotConnectedError at once, the holder keeps its entry', async () => {
    const first = rpc();
    await first.connect();
    const { logger, lines } = capturingLogger();
    const second = rpc({ logger });
    const connecting = rejection(second.connect());
    await until(() => lines.some((line) => line.msg === WAITING), 5000, 'the second to wait');
    const closing = performance.now();
    await second.close();
    expect(await connecting).to.be.instanceOf(NotConnectedError);
    expect(performance.now() - closing).to.be.below(1000);
    expect((await first.client.instances()).map((i) => i.instanceId)).to.deep.equal(['x']);
  });

  it('a crashed holder (its announcement left to expire) delays the next one by about registry.ttlMs at most', async () => {
    const worker = spawnPeer('test/queries/peers/query-worker.ts', { TEST_REDIS_URL: redis.url, TEST_NAMESPACE: redis.namespace, TEST_SERVICE: service, TEST_INSTANCE_ID: 'x' });
    peers.push(worker);
    await worker.next<Message>((m) => m.ev === 'ready', 30_000);
    await worker.kill(); // SIGKILL: no withdraw, its entry (ttlMs 1000) expires
    const killedAt = performance.now();
    const next = rpc();
    await next.connect();
    const delay = performance.now() - killedAt;
    expect(delay, 'waited for the entry to expire').to.be.within(500, 1000 + 600);
  });

  it('foreign-style announce (three ARGV, no mode) still announces unconditionally, and connect() respects what it wrote', async () => {
    const names = new Names(redis.namespace);
    const keys = [names.instanceSet(service), names.instanceAnnouncements(service)];
    const foreign = Buffer.from([0x81, 0xaa, ...Buffer.from('instanceId'), 0xa1, 0x78]); // {"instanceId": "x"}
    const now = Number(await admin.eval(announceScript.source, 2, ...keys, 'x', foreign, 800));
    expect(now).to.be.a('number').above(1e12);
    // run again over a live entry with other bytes: no mode, no check, as before
    expect(Number(await admin.eval(announceScript.source, 2, ...keys, 'x', foreign, 800))).to.be.at.least(now);
    expect(await admin.hgetBuffer(keys[1], 'x')).to.deep.equal(foreign);
    const startedAt = performance.now();
    const client = rpc();
    await client.connect(); // waits out the foreign entry's 800 ms
    expect(performance.now() - startedAt).to.be.within(400, 800 + 600);
    expect(await admin.hgetBuffer(keys[1], 'x')).to.not.deep.equal(foreign);
    // an unknown mode is refused, not taken for the old behaviour
    expect((await rejection(admin.eval(announceScript.source, 2, ...keys, 'y', foreign, 800, 'shared'))).message).to.match(/unknown mode shared/);
    expect(await admin.zscore(keys[0], 'y')).to.equal(null);
  });

  it('the memory route keeps the same rule', async () => {
    const deployment = new MemoryDeployment();
    const first = new RedisRPCClient({ service, instanceId: 'x', ...deployment.options });
    const second = new RedisRPCClient({ service, instanceId: 'x', ...deployment.options, registry: { instanceIdWaitMs: 200 } });
    clients.push(first, second);
    await first.connect();
    expect(await rejection(second.connect())).to.be.instanceOf(InstanceIdInUseError);
    await first.close();
    await second.connect();
  });

  it('rolling restart across processes: the new process waits for the old one, and no durable query runs twice', async () => {
    const env = { TEST_REDIS_URL: redis.url, TEST_NAMESPACE: redis.namespace, TEST_SERVICE: service, TEST_INSTANCE_ID: 'x', TEST_LEDGER: `ledger:${service}`, TEST_SLOW_MS: '250', TEST_BATCH_SIZE: '4', TEST_VISIBILITY_MS: '5000' };
    const old = spawnPeer('test/queries/peers/query-worker.ts', env);
    peers.push(old);
    await old.next<Message>((m) => m.ev === 'ready', 30_000);
    // the new process starts while the old one is working (same id, as a rolling restart that keeps it)
    const neu = spawnPeer('test/queries/peers/query-worker.ts', env);
    peers.push(neu);
    const sender = new RedisRPCClient({ service: 'sender', redis: redis.url, namespace: redis.namespace, queues: { consume: false } });
    clients.push(sender);
    await sender.connect();
    const total = 60;
    for (let i = 0; i < total; i++) {
      await sender.fireAndForget(service, 'record', { i }, { queryId: `f-${i}` });
      await sender.broadcast(service, 'record', { i }, { queryId: `b-${i}` });
    }
    const processed = async () => Object.keys(await admin.hgetall(`ledger:${service}`)).length;
    await neu.next<Message>((m) => m.ev === 'connecting', 30_000);
    const before = await processed();
    await until(async () => (await processed()) >= before + 12, 20_000, 'the old process to work on while the new one connects');
    const startedBeside = neu.received.some((m) => (m as Message).ev === 'ready');
    expect(await processed(), 'the old one had work left').to.be.below(2 * total);
    await old.ask<Message>({ cmd: 'close' }, 'closed', 30_000);
    await neu.next<Message>((m) => m.ev === 'ready', 10_000);
    await until(async () => (await processed()) >= 2 * total, 30_000, 'every query processed');
    const ledger = await admin.hgetall(`ledger:${service}`);
    const twice = Object.entries(ledger).filter(([, count]) => count !== '1');
    expect(twice, 'queries run twice').to.deep.equal([]);
    expect(Object.keys(ledger)).to.have.length(2 * total);
    expect(startedBeside, 'the new process started beside the old one').to.equal(false);
  });
});
