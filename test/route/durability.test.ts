/**
 * Appends with `durability.replicas` wait for replica acknowledgements
 * (`WAIT`), each on a pooled connection of its own: at most
 * MAX_ACKNOWLEDGED_APPENDS at a time. While a replica is gone every WAIT
 * lasts its whole timeout, and before the bound every send of an outage
 * opened one more connection (a whole Cluster on a cluster).
 */
import { expect } from 'chai';
import Redis, { Cluster } from 'ioredis';
import { RedisUnavailableError } from '../../src/errors/RedisUnavailableError';
import { MAX_ACKNOWLEDGED_APPENDS, RedisStreamStore } from '../../src/route/RedisStreamStore';
import { startRedis, type TestRedis } from '../support/redis-server';
import { until } from '../support/async';
import { cluster, topologiesAvailable } from '../support/redis-topologies';

/** The connections the servers of `admins` have, in all. */
async function clients(...admins: Redis[]): Promise<number> {
  const counts = await Promise.all(admins.map(async (admin) => Number(/^connected_clients:(\d+)/m.exec(await admin.info('clients'))?.[1])));
  return counts.reduce((sum, count) => sum + count, 0);
}

/** The connections the servers of `admins` have in all, sampled while `work` runs: the most seen. */
async function peakClients(admins: Redis | Redis[], work: Promise<unknown>): Promise<number> {
  const servers = Array.isArray(admins) ? admins : [admins];
  let done = false;
  const finished = work.finally(() => (done = true)).catch(() => undefined);
  let peak = 0;
  while (!done) {
    peak = Math.max(peak, await clients(...servers));
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 20))]);
  }
  return peak;
}

describe('durable appends waiting for replicas (durability.replicas)', function () {
  this.timeout(30_000);
  let master: TestRedis;
  let replica: TestRedis;
  before(async function () {
    this.timeout(60_000);
    master = await startRedis({ private: true });
    const port = new URL(master.url).port;
    replica = await startRedis({ private: true, args: ['--replicaof', '127.0.0.1', port] });
  });
  after(async () => {
    await replica?.stop();
    await master?.stop();
  });

  it(`hold at most ${MAX_ACKNOWLEDGED_APPENDS} pooled connections; the appends beyond wait for one and succeed when the replica answers`, async () => {
    const admin = new Redis(master.url);
    const commands = new Redis(master.url);
    const store = new RedisStreamStore(commands, { replicas: 1, timeoutMs: 5000 });
    try {
      const replicaAdmin = new Redis(replica.url);
      await until(async () => /^master_link_status:up/m.test(await replicaAdmin.info('replication')), 10_000, 'the replica to be in sync');
      replicaAdmin.disconnect();
      await commands.ping();
      const base = await clients(admin);
      const count = 5 * MAX_ACKNOWLEDGED_APPENDS;
      const sends = Promise.all(Array.from({ length: count }, (_, i) => store.streamAdd(`${master.namespace}:ok:${i}`, Buffer.from('x'))));
      const peak = await peakClients(admin, sends);
      expect(await sends).to.have.length(count);
      expect(peak - base, 'connections opened for the appends').to.be.at.most(MAX_ACKNOWLEDGED_APPENDS);
    } finally {
      store.close();
      admin.disconnect();
      commands.disconnect();
    }
  });

  it('fail with a typed error while the replica is gone, instead of opening a connection per send and queueing for ever', async () => {
    const admin = new Redis(master.url);
    const commands = new Redis(master.url);
    const timeoutMs = 300;
    const store = new RedisStreamStore(commands, { replicas: 1, timeoutMs });
    try {
      await replica.stop();
      await until(async () => /^connected_slaves:0/m.test(await admin.info('replication')), 10_000, 'the replica to be gone');
      await commands.ping();
      const base = await clients(admin);
      const count = 6 * MAX_ACKNOWLEDGED_APPENDS;
      const begun = performance.now();
      const outcomes = Promise.all(Array.from({ length: count }, (_, i) => store.streamAdd(`${master.namespace}:gone:${i}`, Buffer.from('x')).then(() => undefined, (error: Error) => error)));
      const peak = await peakClients(admin, outcomes);
      const errors = await outcomes;
      const tookMs = performance.now() - begun;
      expect(peak - base, 'connections opened for the appends').to.be.at.most(MAX_ACKNOWLEDGED_APPENDS);
      for (const error of errors) expect(error, String(error)).to.be.instanceOf(RedisUnavailableError);
      const unsent = errors.filter((error) => /appends were waiting for 1 replica\(s\) to acknowledge \(durability\.replicas\) and none ended within 300 ms/.test(String(error?.message)));
      const unacknowledged = errors.filter((error) => /0 of 1 replicas acknowledged entry/.test(String(error?.message)));
      expect(unsent.length + unacknowledged.length, 'every send says which').to.equal(count);
      expect(unsent.every((error) => (error as RedisUnavailableError).applied === false), 'an append that waited for a place was not sent').to.equal(true);
      // each send ends within about one timeout of waiting for a place and one of WAIT
      expect(tookMs, 'every send settled in bounded time').to.be.below(2 * timeoutMs + 2000);
      expect(await admin.keys(`${master.namespace}:gone:*`), 'the unsent appends wrote nothing').to.have.length(unacknowledged.length);
    } finally {
      store.close();
      admin.disconnect();
      commands.disconnect();
    }
  });

  it('on a cluster: at most 8 pooled Clusters while the replicas cannot acknowledge, every send failing typed', async function () {
    if (!topologiesAvailable || process.env.INTRACOM_TEST_TOPOLOGIES === '0') this.skip();
    this.timeout(120_000);
    const c = await cluster();
    const admins = c.nodes.map((node) => new Redis({ port: node.port }));
    const commands = new Cluster(c.seeds);
    // two replicas asked of masters that have one: every WAIT lasts its whole timeout, as in an outage
    const store = new RedisStreamStore(commands, { replicas: 2, timeoutMs: 300 });
    try {
      await commands.ping();
      const base = await clients(...admins);
      const count = 12 * MAX_ACKNOWLEDGED_APPENDS;
      const namespace = c.namespace();
      const outcomes = Promise.all(Array.from({ length: count }, (_, i) => store.streamAdd(`${namespace}:gone:${i}`, Buffer.from('x')).then(() => undefined, (error: Error) => error)));
      const peak = await peakClients(admins, outcomes);
      for (const error of await outcomes) expect(error, String(error)).to.be.instanceOf(RedisUnavailableError);
      // a pooled Cluster connects to the nodes it uses, every node at most (measured with 48 sends: 12 connections, and 82 before the bound)
      expect(peak - base, 'connections opened for the appends').to.be.at.most(MAX_ACKNOWLEDGED_APPENDS * c.nodes.length);
    } finally {
      store.close();
      for (const admin of admins) admin.disconnect();
      commands.disconnect();
    }
  });
});
