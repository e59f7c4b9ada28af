/**
 * FIRE_AND_FORGET and BROADCAST against a real Redis, across processes, with
 * consumers killed and Redis restarted: none lost, duplicates within the
 * documented bound, broadcasts processed once by every instance.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { spawnPeer, type Peer } from '../support/processes';
import { until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

type Message = { ev: string };

/** Sums the ledger: how many distinct queries were processed, and how many processings in all. */
async function ledgerTotals(redis: Redis, key: string, prefix: string): Promise<{ distinct: number; total: number }> {
  const all = await redis.hgetall(key);
  const counts = Object.entries(all)
    .filter(([field]) => field.startsWith(prefix))
    .map(([, value]) => Number(value));
  return { distinct: counts.length, total: counts.reduce((a, b) => a + b, 0) };
}

for (const durability of ['restart of a consumer', 'restart of Redis (AOF on)'] as const) {
  describe(`FIRE_AND_FORGET survives a ${durability}`, function () {
    this.timeout(120_000);
    let redis: TestRedis;
    let admin: Redis;
    const peers: Peer[] = [];
    const clients: RedisRPCClient[] = [];

    before(async () => {
      redis = await startRedis({ private: true, args: durability === 'restart of Redis (AOF on)' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [] });
      admin = new Redis(redis.url);
      admin.on('error', () => undefined);
    });
    after(async () => {
      // closed here too: a failed assertion skips the test's own close, and the client would retry forever once Redis stops
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(peers.map((p) => p.kill()));
      admin.disconnect();
      await redis.stop();
    });

    it('processes all 10,000 queries, none lost, duplicates within the bound', async () => {
      const total = 10_000;
      const env = { TEST_REDIS_URL: redis.url, TEST_NAMESPACE: redis.namespace, TEST_SERVICE: 'worker', TEST_LEDGER: 'ledger', TEST_VISIBILITY_MS: '1000', TEST_SLOW_MS: '0' };
      const spawnWorker = async (id: string, slowMs = '0'): Promise<Peer> => {
        const peer = spawnPeer('test/queries/peers/query-worker.ts', { ...env, TEST_INSTANCE_ID: id, TEST_SLOW_MS: slowMs });
        peers.push(peer);
        await peer.next<Message>((m) => m.ev === 'ready', 30_000);
        return peer;
      };
      const doomed = await spawnWorker('doomed', '1'); // slow enough to always hold a batch when killed
      await spawnWorker('survivor');

      const sender = new RedisRPCClient({ service: 'sender', redis: redis.url, namespace: redis.namespace, queues: { consume: false } });
      clients.push(sender);
      sender.client.on('error', () => undefined);
      await sender.connect();
      const sent: Array<Promise<unknown>> = [];
      for (let i = 0; i < total; i++) {
        sent.push(sender.fireAndForget('worker', 'record', { i }));
        if (i === total / 2) {
          // midway: the fault
          await until(async () => (await ledgerTotals(admin, 'ledger', 'FIRE_AND_FORGET')).distinct > 1000, 30_000, 'a first share processed');
          if (durability === 'restart of a consumer') await doomed.kill();
          else await redis.restart?.();
        }
      }
      await Promise.all(sent);
      if (durability === 'restart of a consumer') await spawnWorker('doomed'); // it comes back with the same id

      await until(async () => (await ledgerTotals(admin, 'ledger', 'FIRE_AND_FORGET')).distinct >= total, 90_000, 'every query processed');
      const { distinct, total: processings } = await ledgerTotals(admin, 'ledger', 'FIRE_AND_FORGET');
      expect(distinct).to.equal(total);
      // documented bound: at most 2 x batchSize (100) queries per consumer caught by the fault
      // (one consumer killed; or both consumers losing Redis)
      expect(processings - total).to.be.at.most(durability === 'restart of a consumer' ? 200 : 400);
      const status = await sender.queueStatus('worker');
      expect(status.fireAndForget.depth).to.equal(0);
      expect(status.deadLetters).to.equal(0);
      await sender.close();
    });
  });
}

describe('BROADCAST reaches every instance once, across a restart', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let admin: Redis;
  const peers: Peer[] = [];

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
  });
  after(async () => {
    await Promise.all(peers.map((p) => p.kill()));
    admin.disconnect();
    await redis.stop();
  });

  it('3 instances, one restarted midway with the same id: each processed each query exactly once', async () => {
    const spawnWorker = async (id: string): Promise<Peer> => {
      const peer = spawnPeer('test/queries/peers/query-worker.ts', {
        TEST_REDIS_URL: redis.url,
        TEST_NAMESPACE: redis.namespace,
        TEST_SERVICE: 'listener',
        TEST_INSTANCE_ID: id,
        TEST_LEDGER: `ledger:${id}`,
      });
      peers.push(peer);
      await peer.next<Message>((m) => m.ev === 'ready', 30_000);
      return peer;
    };
    const workers = [await spawnWorker('a'), await spawnWorker('b'), await spawnWorker('c')];
    const sender = new RedisRPCClient({ service: 'sender', redis: redis.url, namespace: redis.namespace, queues: { consume: false } });
    await sender.connect();

    const total = 300;
    const ids: string[] = [];
    for (let i = 0; i < total; i++) {
      if (i === 100) {
        await workers[1].ask<Message>({ cmd: 'close' }, 'closed');
      }
      ids.push((await sender.broadcast('listener', 'record', { i })).queryId);
      if (i === 200) workers[1] = await spawnWorker('b');
    }
    for (const id of ['a', 'b', 'c']) {
      await until(async () => (await ledgerTotals(admin, `ledger:${id}`, 'BROADCAST')).distinct >= total, 30_000, `instance ${id} to catch up`);
      const all = await admin.hgetall(`ledger:${id}`);
      expect(Object.keys(all).sort()).to.deep.equal(ids.map((q) => `BROADCAST:${q}`).sort());
      expect(Object.values(all).every((count) => count === '1'), `instance ${id} processed a query twice`).to.equal(true);
    }
    const status = await sender.queueStatus('listener');
    expect(status.broadcast.instances.map((i) => i.instanceId).sort()).to.deep.equal(['a', 'b', 'c']);
    expect(status.broadcast.instances.every((i) => i.pending === 0 && i.lag === 0)).to.equal(true);
    await sender.close();
  });
});
