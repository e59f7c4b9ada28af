/**
 * Claims across processes, against a real Redis: slow handlers in several
 * instance processes run once, copies of one queryId run once, and the query
 * of an instance killed mid-handler is redelivered after the visibility
 * timeout. Every processing is counted in a Redis ledger by the peers.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { Names } from '../../vars/names';
import { spawnPeer, type Peer } from '../support/processes';
import { until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

type Message = { ev: string };

describe('durable query claims across instance processes (redis)', function () {
  this.timeout(90_000);
  let redis: TestRedis;
  let admin: Redis;
  let peers: Peer[];
  let sender: RedisRPCClient;

  const spawnWorker = async (service: string, id: string, visibilityMs: number, slowMs: number, batchSize = 100): Promise<Peer> => {
    const peer = spawnPeer('test/queries/peers/query-worker.ts', {
      TEST_REDIS_URL: redis.url,
      TEST_NAMESPACE: redis.namespace,
      TEST_SERVICE: service,
      TEST_INSTANCE_ID: id,
      TEST_LEDGER: `ledger:${service}`,
      TEST_VISIBILITY_MS: String(visibilityMs),
      TEST_SLOW_MS: String(slowMs),
      TEST_BATCH_SIZE: String(batchSize),
    });
    peers.push(peer);
    await peer.next<Message>((m) => m.ev === 'ready', 30_000);
    return peer;
  };
  /** Resolves once every query sent to `service` was delivered and acknowledged. */
  const drained = (service: string): Promise<void> =>
    until(
      async () => {
        const status = await sender.queueStatus(service);
        return status.fireAndForget.depth === 0 && status.fireAndForget.pending === 0;
      },
      60_000,
      `the queries of ${service} acknowledged`,
    );

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
    sender = new RedisRPCClient({ service: 'sender', redis: redis.url, namespace: redis.namespace, queues: { consume: false } });
    await sender.connect();
  });
  beforeEach(() => {
    peers = [];
  });
  afterEach(async () => {
    await Promise.all(peers.map((p) => p.kill()));
  });
  after(async () => {
    await sender.close();
    admin.disconnect();
    await redis.stop();
  });

  it('10 queries of 100 ms sent in one tick, visibilityTimeoutMs 400, two processes: each processed once', async () => {
    await Promise.all([spawnWorker('slow', 'one', 400, 100), spawnWorker('slow', 'two', 400, 100)]);
    const ids = (await Promise.all(Array.from({ length: 10 }, (_, i) => sender.fireAndForget('slow', 'record', { i })))).map((q) => q.queryId);
    await drained('slow');
    const ledger = await admin.hgetall('ledger:slow');
    expect(Object.keys(ledger).sort()).to.deep.equal(ids.map((id) => `FIRE_AND_FORGET:${id}`).sort());
    expect(Object.values(ledger)).to.deep.equal(Array(10).fill('1'));
  });

  it('12 ids each sent twice (a tick apart, from two senders) to three processes: each processed once', async () => {
    await Promise.all(['a', 'b', 'c'].map((id) => spawnWorker('dups', id, 2000, 5)));
    const second = new RedisRPCClient({ service: 'sender-b', redis: redis.url, namespace: redis.namespace, queues: { consume: false } });
    await second.connect();
    const ids = Array.from({ length: 12 }, (_, i) => `dup-${i}`);
    for (const queryId of ids) {
      await sender.fireAndForget('dups', 'record', null, { queryId });
      await new Promise((resolve) => setImmediate(resolve));
      await second.fireAndForget('dups', 'record', null, { queryId });
    }
    await drained('dups');
    await second.close();
    const ledger = await admin.hgetall('ledger:dups');
    expect(Object.keys(ledger).sort()).to.deep.equal(ids.map((id) => `FIRE_AND_FORGET:${id}`).sort());
    expect(Object.values(ledger)).to.deep.equal(Array(12).fill('1'));
  });

  it('an instance killed with a backlog in hand (a batch running, the next claimed, entries read ahead by its one-step reads): the other runs all of it, at most 2 x batchSize twice', async () => {
    const total = 200;
    const batchSize = 5;
    const doomed = await spawnWorker('ahead', 'ahead-1', 1000, 20, batchSize);
    // ticks of 5: entries of 5 queries, one entry per read
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < total; i += batchSize) {
      for (let k = 0; k < batchSize; k++) sends.push(sender.fireAndForget('ahead', 'record', { i: i + k }));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(sends);
    const processed = async (): Promise<string[]> => Object.values(await admin.hgetall('ledger:ahead'));
    await until(async () => (await processed()).length >= 50, 30_000, 'a first share processed');
    // the consumer holds more than the batch it runs: what its steps claimed and read ahead
    const stream = new Names(redis.namespace).queryStream('ahead');
    // one instant may fall between two of its steps (a load of 20 did): wait for one where it holds two entries or more
    const held = async (): Promise<number> => ((await admin.xpending(stream, 'workers', '-', '+', 100)) as unknown[]).length;
    await until(async () => (await held()) >= 2, 10_000, 'entries pending for the consumer when it dies: at least 2');
    await doomed.kill();
    await spawnWorker('ahead', 'ahead-2', 1000, 0, batchSize);
    await drained('ahead');
    const counts = (await processed()).map(Number);
    expect(counts).to.have.length(total);
    expect(counts.reduce((a, b) => a + b, 0) - total, 'processed twice').to.be.at.most(2 * batchSize);
  });

  it('an instance killed in the middle of a handler: its query is redelivered to the other after the visibility timeout', async () => {
    const workers = new Map([
      ['k1', await spawnWorker('crash', 'k1', 1000, 1500)],
      ['k2', await spawnWorker('crash', 'k2', 1000, 1500)],
    ]);
    const { queryId } = await sender.fireAndForget('crash', 'record', null);
    const stream = new Names(redis.namespace).queryStream('crash');
    let holder: string | undefined;
    await until(
      async () => {
        const pending = (await admin.xpending(stream, 'workers', '-', '+', 10)) as Array<[string, string, number, number]>;
        holder = pending[0]?.[1];
        return holder !== undefined;
      },
      10_000,
      'a worker holding the query',
    );
    const killedAt = Date.now();
    await workers.get(holder as string)?.kill();
    await drained('crash');
    expect(Date.now() - killedAt, 'after the visibility timeout and the handler').to.be.at.least(1000 + 1500 - 100);
    expect(await admin.hgetall('ledger:crash')).to.deep.equal({ [`FIRE_AND_FORGET:${queryId}`]: '1' });
  });
});
