/**
 * What only a cluster or Sentinel can show: every way of naming one is taken
 * and used (never replaced by a default server), anything else is refused
 * with a typed error, and on a cluster per-service and per-instance channels
 * are shard channels, on the one shard of the service's slot.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { expect } from 'chai';
import Redis, { Cluster } from 'ioredis';
import { RedisClient } from '../../src/client/RedisClient';
import { ConnectionError } from '../../src/errors/ConnectionError';
import { TopologyError } from '../../src/errors/TopologyError';
import { ValidationError } from '../../src/errors/ValidationError';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRoute } from '../../src/route/RedisRoute';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { Names, serviceEvents } from '../../vars/names';
import { rejection, until } from '../support/async';
import { cluster, sentinel, topologiesAvailable, type TestCluster, type TestSentinel } from '../support/redis-topologies';
import { routeOptions } from './harnesses';
import { freePort, startRedis } from '../support/redis-server';
import { runCli, startCli } from '../cli/run';
import type { StatusReport } from '../../src/cli/commands/status';

const describeTopologies = topologiesAvailable && process.env.INTRACOM_TEST_TOPOLOGIES !== '0' ? describe : describe.skip;

/** Every shard channel with a subscriber, per master port. */
async function shardChannels(c: TestCluster, pattern: string): Promise<Map<number, string[]>> {
  const found = new Map<number, string[]>();
  for (const node of c.nodes) {
    const probe = new Redis({ port: node.port, lazyConnect: true });
    await probe.connect();
    const role = String(await probe.info('replication'));
    if (/role:master/.test(role)) {
      const channels = (await probe.call('PUBSUB', 'SHARDCHANNELS', pattern)) as string[];
      if (channels.length > 0) found.set(node.port, channels);
    }
    probe.disconnect();
  }
  return found;
}

/**
 * Connects a RedisClient and calls a RedisMutex on each connection form, and
 * hands `check` each error: both must come well before their 10 s timeouts.
 */
async function refusedAtOnce(forms: Array<[string, unknown]>, check: (error: Error, label: string) => void): Promise<void> {
  for (const [label, redis] of forms) {
    const client = new RedisClient({ service: 'lost', redis: redis as string, connectTimeoutMs: 10_000 });
    const mutex = new RedisMutex({ redis: redis as string, commandTimeoutMs: 10_000 });
    try {
      const begun = performance.now();
      const errors = [await rejection(client.connect()), await rejection(mutex.P('x', 'n', 1000))];
      expect(performance.now() - begun, `${label}: refused at once, not at a timeout`).to.be.below(5000);
      for (const error of errors) check(error, label);
    } finally {
      await Promise.all([client.close(), mutex.close()]);
    }
  }
}

describeTopologies('connections to a cluster and to Sentinel', function () {
  this.timeout(30_000);
  let c: TestCluster;
  let s: TestSentinel;
  before(async function () {
    this.timeout(120_000);
    [c, s] = await Promise.all([cluster(), sentinel()]);
  });

  it('uses an ioredis Cluster given to a RedisClient and to a RedisMutex, never a default server', async () => {
    const namespace = c.namespace();
    const given = new Cluster(c.seeds);
    const client = new RedisClient({ service: 'users', redis: given, namespace });
    const mutex = new RedisMutex({ redis: given, namespace });
    try {
      await client.connect();
      expect((client.route as RedisRoute).topology).to.equal('cluster');
      expect(await mutex.P('job', 'n1', 10_000)).to.equal(true);
      const names = new Names(namespace);
      expect(await given.exists(names.mutex('job'), names.mutexFence('job'))).to.be.at.least(1);
      expect(await given.exists(names.instanceSet('users'))).to.equal(1);
      expect((await client.instances()).map((i) => i.instanceId)).to.deep.equal([client.instanceId]);
    } finally {
      await mutex.close();
      await client.close();
      expect(given.status, 'the caller keeps its Cluster').to.equal('ready');
      given.disconnect();
    }
  });

  it('takes cluster seeds as { cluster }, as an array and as redis+cluster:// (with /0 too), and Sentinel as options and as redis+sentinel://', async () => {
    const connections = [
      { cluster: c.seeds.slice(0, 2) },
      c.seeds.slice(2, 3),
      c.url,
      `${c.url}/0`,
      { sentinels: s.sentinels, name: s.name },
      s.url,
    ];
    for (const redis of connections) {
      const client = new RedisClient({ service: 'seeded', redis, namespace: c.namespace() });
      await client.connect();
      expect(await client.instances()).to.have.length(1);
      await client.close();
    }
  });

  it('takes every cluster and Sentinel form in a RedisMutex and a RedisRPCClient too, and writes to that deployment', async () => {
    const givenCluster = new Cluster(c.seeds);
    const givenSentinel = new Redis({ sentinels: s.sentinels, name: s.name });
    const clusterProbe = new Cluster(c.seeds);
    const sentinelProbe = new Redis({ sentinels: s.sentinels, name: s.name });
    const forms: Array<[string, unknown, Redis | Cluster]> = [
      ['{ cluster }', { cluster: c.seeds.slice(0, 1) }, clusterProbe],
      ['seed array', c.seeds.slice(1, 3), clusterProbe],
      ['redis+cluster://', c.url, clusterProbe],
      ['an ioredis Cluster', givenCluster, clusterProbe],
      ['Sentinel options', { sentinels: s.sentinels, name: s.name }, sentinelProbe],
      ['redis+sentinel://', s.url, sentinelProbe],
      ['an ioredis Redis on Sentinel', givenSentinel, sentinelProbe],
    ];
    try {
      for (const [label, redis, probe] of forms) {
        const namespace = c.namespace();
        const names = new Names(namespace);
        const mutex = new RedisMutex({ redis: redis as string, namespace });
        const server = new RedisRPCClient({ service: 'calc', redis: redis as string, namespace });
        const caller = new RedisRPCClient({ service: 'front', redis: redis as string, namespace });
        try {
          const lock = await mutex.acquire('job', { timeoutMs: 10_000 });
          expect(await probe.get(names.mutex('job')), `${label}: the lock is in the deployment`).to.match(/\|/);
          await lock.release();
          await Promise.all([server.connect(), caller.connect()]);
          await server.expose<[number]>('inc', ([n]) => n + 1);
          expect(await caller.callService<number>('calc', 'inc', 41), label).to.equal(42);
          expect(await probe.exists(names.instanceSet('calc')), `${label}: the registry is in the deployment`).to.equal(1);
        } finally {
          await Promise.all([mutex.close(), server.close(), caller.close()]);
        }
      }
      expect([givenCluster.status, givenSentinel.status], 'what the caller passed stays open').to.deep.equal(['ready', 'ready']);
    } finally {
      for (const connection of [givenCluster, givenSentinel, clusterProbe, sentinelProbe]) connection.disconnect();
    }
  });

  it('refuses cluster seeds that reach a server without cluster mode with a TopologyError, in the client and the mutex', async () => {
    const single = await startRedis();
    const seeds = single.url.replace('redis://', 'redis+cluster://');
    try {
      const client = new RedisClient({ service: 'lost', redis: seeds, namespace: single.namespace });
      const error = await rejection(client.connect());
      expect(error, String(error)).to.be.instanceOf(TopologyError);
      expect(error.message).to.match(/does not run in cluster mode: connect with redis:\/\//);
      await client.close();
      const mutex = new RedisMutex({ redis: seeds, namespace: single.namespace });
      const refused = await rejection(mutex.P('x', 'n', 1000));
      expect(refused, String(refused)).to.be.instanceOf(TopologyError);
      await mutex.close();
    } finally {
      await single.stop();
    }
  });

  it('refuses cluster seeds that reach a Sentinel with a TopologyError saying so, at once, in the client and the mutex', async () => {
    const seed = `127.0.0.1:${s.sentinels[0].port}`;
    const lazy = new Cluster([`redis://${seed}`], { lazyConnect: true });
    lazy.on('error', () => undefined);
    const started = new Cluster([`redis://${seed}`]);
    started.on('error', () => undefined);
    const down = await freePort();
    const forms: Array<[string, unknown]> = [
      ['redis+cluster://', `redis+cluster://${seed}`],
      ['{ cluster }', { cluster: [`redis://${seed}`] }],
      // ioredis's error names the last seed tried only, in random order
      ['a Sentinel seed and an unreachable one', [`redis://127.0.0.1:${down}`, `redis://${seed}`]],
      ['an ioredis Cluster, lazy', lazy],
      ['an ioredis Cluster, connecting', started],
    ];
    try {
      // the refusal comes from the first reading of the slot map
      await refusedAtOnce(forms, (error, label) => {
        expect(error, `${label}: ${String(error)}`).to.be.instanceOf(TopologyError);
        expect(error.message, label).to.match(/is a Redis Sentinel, not a cluster node/);
        // a Cluster already connecting may have tried its seeds before anyone listened: then "a seed is"
        if (!label.endsWith('connecting')) expect(error.message, label).to.include(`seed ${seed} is a Redis Sentinel`);
        expect(error.message, label).to.match(/connect with redis\+sentinel:\/\//);
      });
    } finally {
      lazy.disconnect();
      started.disconnect();
    }
  });

  it('refuses a plain redis:// URL, options or an ioredis Redis that name a Sentinel with a TopologyError saying so, in the client and in every mutex call', async () => {
    const { host = '127.0.0.1', port } = s.sentinels[0];
    const given = new Redis({ host, port });
    const forms: Array<[string, unknown]> = [
      ['redis://', `redis://${host}:${port}`],
      ['{ host, port }', { host, port }],
      ['an ioredis Redis', given],
    ];
    try {
      await refusedAtOnce(forms, (error, label) => {
        expect(error, `${label}: ${String(error)}`).to.be.instanceOf(TopologyError);
        expect(error.message, label).to.match(/is a Redis Sentinel, not a data server.*connect with redis\+sentinel:\/\//);
      });
      // every kind of mutex call, each the first of its mutex (no raw "ERR unknown command")
      for (const call of [(m: RedisMutex) => m.tryAcquire('x'), (m: RedisMutex) => m.inspect('x'), (m: RedisMutex) => m.list()]) {
        const mutex = new RedisMutex({ redis: `redis://${host}:${port}` });
        try {
          expect(await rejection(call(mutex))).to.be.instanceOf(TopologyError);
        } finally {
          await mutex.close();
        }
      }
      // and every later call of one mutex, also after the time ioredis takes to retry a connection in the background
      const mutex = new RedisMutex({ redis: `redis://${host}:${port}` });
      try {
        const calls = [() => mutex.P('x', 'n', 1000), () => mutex.tryAcquire('x'), () => mutex.inspect('x'), () => mutex.list(), () => mutex.P('x', 'n', 1000)];
        for (const call of calls) expect(await rejection(call()), 'a later call').to.be.instanceOf(TopologyError);
        await new Promise((resolve) => setTimeout(resolve, 2500));
        for (const call of calls) expect(await rejection(call()), 'a call after a background retry could have run').to.be.instanceOf(TopologyError);
      } finally {
        await mutex.close();
      }
    } finally {
      given.disconnect();
    }
  });

  it('refuses a Sentinel master name that no sentinel monitors with a TopologyError naming it and the sentinels, at once; unreachable sentinels stay a ConnectionError', async () => {
    const hosts = s.sentinels.map((x) => `127.0.0.1:${x.port}`);
    const lent = new Redis({ sentinels: s.sentinels, name: 'nosuchmaster', lazyConnect: true });
    lent.on('error', () => undefined); // it goes on asking the sentinels once refused: its owner's to hear
    const started = new Redis({ sentinels: s.sentinels, name: 'nosuchmaster' });
    started.on('error', () => undefined);
    const forms: Array<[string, unknown]> = [
      ['Sentinel options', { sentinels: s.sentinels, name: 'nosuchmaster' }],
      ['redis+sentinel://', `redis+sentinel://${hosts.join(',')}/nosuchmaster`],
      ['an ioredis Redis on Sentinel', lent],
      ['an ioredis Redis on Sentinel, connecting', started],
      // without updateSentinels, ioredis reports the null answer itself
      ['Sentinel options, updateSentinels off', { sentinels: s.sentinels, name: 'nosuchmaster', updateSentinels: false }],
    ];
    try {
      // after one round of the sentinels, not at the timeout
      await refusedAtOnce(forms, (error, label) => {
        expect(error, `${label}: ${String(error)}`).to.be.instanceOf(TopologyError);
        expect(error.message, label).to.match(/no sentinel monitors a master named "nosuchmaster": .*answered SENTINEL GET-MASTER-ADDR-BY-NAME that they know no such master/);
        for (const host of hosts) expect(error.message, `${label} names ${host}`).to.include(host);
      });
    } finally {
      lent.disconnect();
      started.disconnect();
    }
    // one sentinel down: the others' null answers still settle it, and the message says who could not be asked
    const down = await freePort();
    const partial = new RedisClient({ service: 'lost', redis: { sentinels: [{ host: '127.0.0.1', port: down }, ...s.sentinels], name: 'nosuchmaster' }, connectTimeoutMs: 10_000 });
    const error = await rejection(partial.connect());
    await partial.close();
    expect(error, String(error)).to.be.instanceOf(TopologyError);
    expect(error.message).to.include(`(127.0.0.1:${down} could not be asked)`);
    // no sentinel reachable: an outage, not a wrong name
    const unreachable = new RedisClient({ service: 'lost', redis: { sentinels: [{ host: '127.0.0.1', port: down }], name: s.name }, connectTimeoutMs: 1000 });
    const outage = await rejection(unreachable.connect());
    await unreachable.close();
    expect(outage, String(outage)).to.be.instanceOf(ConnectionError);
    expect(outage).not.to.be.instanceOf(TopologyError);
  });

  it('refuses a plain server or a cluster node given as a sentinel with a TopologyError saying which, at once, in the client and the mutex', async () => {
    const single = await startRedis();
    const plain = `127.0.0.1:${new URL(single.url).port}`;
    const node = `127.0.0.1:${new URL(c.seeds[0]).port}`;
    const lent = new Redis({ sentinels: [{ host: '127.0.0.1', port: Number(new URL(single.url).port) }], name: s.name, lazyConnect: true });
    lent.on('error', () => undefined); // it goes on asking once refused: its owner's to hear
    const forms: Array<[string, unknown, string, string]> = [
      ['redis+sentinel:// to a plain server', `redis+sentinel://${plain}/${s.name}`, plain, 'a plain server'],
      ['redis+sentinel:// to a cluster node', `redis+sentinel://${node}/${s.name}`, node, 'a cluster node'],
      ['Sentinel options naming a cluster node', { sentinels: [{ host: '127.0.0.1', port: Number(new URL(c.seeds[0]).port) }], name: s.name }, node, 'a cluster node'],
      ['an ioredis Redis on a plain server as its sentinel', lent, plain, 'a plain server'],
    ];
    try {
      // both answer SENTINEL at once: nothing to wait for
      for (const [label, redis, address, kind] of forms) {
        await refusedAtOnce([[label, redis]], (error) => {
          expect(error, `${label}: ${String(error)}`).to.be.instanceOf(TopologyError);
          expect(error.message, label).to.include(`${address} (${kind}) is not a Sentinel: it answers SENTINEL GET-MASTER-ADDR-BY-NAME with "unknown command"`);
        });
      }
      // a real sentinel among them names the master: nothing refused
      const mixed = new RedisClient({ service: 'mixed', redis: { sentinels: [{ host: '127.0.0.1', port: Number(new URL(single.url).port) }, ...s.sentinels], name: s.name }, connectTimeoutMs: 10_000 });
      await mixed.connect();
      await mixed.close();
    } finally {
      lent.disconnect();
      await single.stop();
    }
  });

  it('fails the mutex\'s first connect with the ConnectionError of the client when nothing answers (nothing was sent)', async () => {
    const down = await freePort();
    await refusedAtOnce(
      [
        ['cluster seed on a dead port', `redis+cluster://127.0.0.1:${down}`],
        ['redis:// on a dead port', `redis://127.0.0.1:${down}`],
      ],
      (error, label) => {
        expect(error, `${label}: ${String(error)}`).to.be.instanceOf(ConnectionError);
        expect(error.message, label).to.match(/^could not connect to Redis at /);
      },
    );
    // a server that accepts and never answers: the mutex's wait for the connection ends the same way
    const accepted: Socket[] = [];
    const silent = createServer((socket) => accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const mutex = new RedisMutex({ redis: `redis://127.0.0.1:${(silent.address() as AddressInfo).port}`, commandTimeoutMs: 300, closeTimeoutMs: 500 }); // close() would wait for the connect attempt in flight
    try {
      const error = await rejection(mutex.tryAcquire('x'));
      expect(error, String(error)).to.be.instanceOf(ConnectionError);
      expect(error.message).to.match(/no answer within 300 ms \(commandTimeoutMs\) while connecting for tryAcquire "x"/);
    } finally {
      await mutex.close();
      for (const socket of accepted) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses an ioredis Redis on one cluster node in the mutex at its first call, with the TopologyError of the client, even for a mutex whose slot that node serves', async () => {
    const namespace = c.namespace();
    const names = new Names(namespace);
    const node = await c.masterOf(names.mutex('m0'));
    const served: string[] = [];
    const elsewhere: string[] = [];
    for (let i = 0; served.length === 0 || elsewhere.length === 0; i++) ((await c.masterOf(names.mutex(`m${i}`))) === node ? served : elsewhere).push(`m${i}`);
    const given = new Redis({ port: node.port });
    await new Promise((resolve) => given.once('ready', resolve));
    const client = new RedisClient({ service: 'lost', redis: given, namespace });
    const mutex = new RedisMutex({ redis: given, namespace });
    // and through a RedisClient (the mutex does not wait for the client's connect())
    const viaClient = new RedisMutex({ redis: new RedisClient({ service: 'lost', redis: given, namespace }) });
    try {
      const refused = await rejection(client.connect());
      expect(refused, String(refused)).to.be.instanceOf(TopologyError);
      for (const [label, m] of [['lent Redis', mutex], ['RedisClient', viaClient]] as const) {
        for (const mutexId of [served[0], elsewhere[0]]) {
          for (const call of [() => m.P(mutexId, 'n', 1000), () => m.inspect(mutexId)]) {
            const error = await rejection(call());
            expect(error, `${label}, ${mutexId}: ${String(error)}`).to.be.instanceOf(TopologyError);
            expect(error.message, 'one check, one error').to.equal(refused.message);
          }
        }
      }
      expect(await given.exists(names.mutex(served[0])), 'nothing was written').to.equal(0);
    } finally {
      await Promise.all([client.close(), mutex.close(), viaClient.close()]);
      expect(given.status, 'the caller keeps its connection').to.equal('ready');
      given.disconnect();
    }
  });

  it('refuses an ioredis Redis or Cluster that its owner closed, at once, with a ConnectionError saying so, in the client and the mutex', async () => {
    const single = await startRedis();
    /** How the owner closes it: after it was ready or not, and whether the end is awaited. */
    type Closing = 'disconnect, ended' | 'disconnect' | 'await quit()' | 'await quit() before ready';
    const forms: Array<[string, () => Redis | Cluster, Closing]> = [
      ['a Redis, ended', () => new Redis(single.url), 'disconnect, ended'],
      ['a Redis, just disconnected', () => new Redis(single.url), 'disconnect'],
      // quit() resolves on the server's OK, before its socket closes: the status is still "ready"
      ['a Redis, quit', () => new Redis(single.url), 'await quit()'],
      ['a Redis, quit while connecting', () => new Redis(single.url), 'await quit() before ready'],
      ['a lazy Redis, quit before it connected', () => new Redis(single.url, { lazyConnect: true }), 'await quit() before ready'],
      ['a Cluster, ended', () => new Cluster(c.seeds), 'disconnect, ended'],
      ['a Cluster, just disconnected', () => new Cluster(c.seeds), 'disconnect'],
      ['a Cluster, quit', () => new Cluster(c.seeds), 'await quit()'],
    ];
    try {
      for (const [label, make, closing] of forms) {
        const given = make();
        if (!closing.includes('before')) await new Promise((resolve) => given.once('ready', resolve));
        const ended = new Promise((resolve) => given.once('end', resolve));
        if (closing.startsWith('disconnect')) given.disconnect();
        else await given.quit();
        if (closing === 'disconnect, ended') await ended;
        // a timeout would take 10 s
        const client = new RedisClient({ service: 'lent', redis: given as Redis, namespace: single.namespace, connectTimeoutMs: 10_000 });
        const mutex = new RedisMutex({ redis: given as Redis, namespace: single.namespace, commandTimeoutMs: 10_000 });
        try {
          const begun = performance.now();
          const errors = [await rejection(client.connect()), await rejection(mutex.P('x', 'n', 1000)), await rejection(mutex.P('x', 'n', 1000))];
          expect(performance.now() - begun, `${label}: at once`).to.be.below(1000);
          for (const error of errors) {
            expect(error, `${label}: ${String(error)}`).to.be.instanceOf(ConnectionError);
            expect(error).not.to.be.instanceOf(TopologyError);
            expect(error.message, label).to.match(/the ioredis (Redis|Cluster) passed in was closed by its owner \(status "\w+"\), and intracom does not reopen a connection it was lent/);
          }
        } finally {
          await Promise.all([client.close(), mutex.close()]);
        }
        await ended;
        expect(['end', 'close'], `${label}: not reopened`).to.include(given.status);
      }
    } finally {
      await single.stop();
    }
  });

  it('refuses query parameters a URL would drop (a Sentinel ?role=slave, a cluster ?foo=) with a ValidationError naming them, in the client, the mutex and the CLI; takes ?db= on a plain URL', async () => {
    const single = await startRedis({ private: true });
    const refusedUrls: Array<[string, RegExp]> = [
      // before, it connected to the master and wrote there
      [`${s.url}?role=slave`, /redis URL: query parameter "role" is not supported \(this URL takes only \?sentinelPassword=\)/],
      [`redis+cluster://${c.seeds[0].replace('redis://', '')}?foo=bar`, /redis URL: query parameter "foo" is not supported \(this URL takes only \?db=\)/],
      [`${single.url}?foo=bar`, /redis: query parameter "foo" is not supported \(this URL takes only \?db=, \?family=, \?username=, \?password=, \?connectionName=\)/],
    ];
    try {
      for (const [url, message] of refusedUrls) {
        for (const make of [() => new RedisClient({ service: 'lost', redis: url }), () => new RedisMutex({ redis: url })]) {
          expect(make, url).to.throw(ValidationError).with.property('message').that.matches(message);
        }
        const cli = await runCli(['--redis', url, 'status']);
        expect(cli.code, `${url}: exit 2: ${cli.stderr}`).to.equal(2);
        expect(cli.stderr, url).to.match(/ValidationError/).and.to.match(message);
      }
      // a query parameter taken is honoured: the mutex's keys land in database 3
      const mutex = new RedisMutex({ redis: `${single.url}?db=3`, namespace: single.namespace });
      const admin = new Redis(`${single.url}/3`);
      try {
        expect(await mutex.P('in-db-3', 'n', 60_000)).to.equal(true);
        expect(await admin.exists(new Names(single.namespace).mutex('in-db-3'))).to.equal(1);
      } finally {
        await mutex.close();
        admin.disconnect();
      }
    } finally {
      await single.stop();
    }
  });

  it('refuses a plain URL that lands on a cluster node with a TopologyError, not a raw MOVED error, in the client and the mutex', async () => {
    const client = new RedisClient({ service: 'lost', redis: c.seeds[0] });
    const error = await rejection(client.connect());
    expect(error).to.be.instanceOf(TopologyError);
    expect(error.message).to.match(/cluster mode: connect with redis\+cluster:\/\//);
    await client.close();
    const mutex = new RedisMutex({ redis: c.seeds[0] });
    expect(await rejection(mutex.P('x', 'n', 1000))).to.be.instanceOf(TopologyError);
    await mutex.close();
  });

  it('refuses what is not a connection, and options that would make intracom silently wrong, with a ValidationError naming them', () => {
    class Elsewhere {
      host = '10.0.0.1';
    }
    const refused: Array<[unknown, RegExp]> = [
      [new Elsewhere(), /an object \(Elsewhere\), which is none of them/],
      [{ cluster: [] }, /redis\.cluster must be a non-empty array/],
      [{ cluster: ['redis://a:1,b:2'] }, /must be one node/],
      [{ sentinels: [{ host: '127.0.0.1', port: 1 }] }, /redis\.name must name the master group/],
      ['redis+sentinel://127.0.0.1:1', /needs the master name/],
      ['redis+cluster://127.0.0.1:1/3', /takes no path/],
      // a database given any other way is refused too, never turned into 0 (RedisClient and RedisMutex alike)
      ['redis+cluster://127.0.0.1:1?db=3', /redis URL: a Redis Cluster has one database \(0\).*takes no path but \/0 and no db but 0/],
      [{ cluster: ['redis://127.0.0.1:1/5'] }, /redis\.cluster\[0\]: a Redis Cluster has one database/],
      [{ cluster: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2?db=4'] }, /redis\.cluster\[1\]: a Redis Cluster has one database/],
      [['redis://127.0.0.1:1/4'], /cluster\[0\]: a Redis Cluster has one database/],
      [{ cluster: ['redis://127.0.0.1:1'], clusterOptions: { redisOptions: { db: 3 } } }, /redis\.clusterOptions\.redisOptions\.db: a Redis Cluster has one database \(0\); received 3/],
      [new Cluster(['redis://127.0.0.1:1'], { lazyConnect: true, redisOptions: { db: 2 } }), /redis \(an ioredis Cluster\) redisOptions\.db: a Redis Cluster has one database/],
      // options that would make intracom silently wrong: a prefix on some keys only, reads behind writes, writes to a replica
      [new Redis({ lazyConnect: true, keyPrefix: 'app:' }), /redis \(an ioredis Redis\) keyPrefix: .*use the namespace option.*received "app:"/],
      [{ host: '127.0.0.1', keyPrefix: 'app:' }, /redis keyPrefix: /],
      [new Cluster(['redis://127.0.0.1:1'], { lazyConnect: true, keyPrefix: 'app:' }), /redis \(an ioredis Cluster\) keyPrefix: /],
      [{ cluster: ['redis://127.0.0.1:1'], clusterOptions: { redisOptions: { keyPrefix: 'app:' } } }, /redis\.clusterOptions redisOptions keyPrefix: /],
      [new Cluster(['redis://127.0.0.1:1'], { lazyConnect: true, scaleReads: 'slave' }), /redis \(an ioredis Cluster\) scaleReads: .*masters only.*received "slave"/],
      [{ cluster: ['redis://127.0.0.1:1'], clusterOptions: { scaleReads: 'all' } }, /redis\.clusterOptions scaleReads: /],
      [{ sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm', role: 'slave' }, /redis role: .*received "slave"/],
      ['http://127.0.0.1:6379', /must be a URL starting redis:\/\//],
      [42, /received 42/],
    ];
    for (const [redis, message] of refused) {
      for (const make of [() => new RedisClient({ service: 'x', redis: redis as string }), () => new RedisMutex({ redis: redis as string })]) {
        let error: unknown;
        try {
          make();
        } catch (thrown) {
          error = thrown;
        }
        expect(error, String(message)).to.be.instanceOf(ValidationError);
        expect((error as Error).message).to.match(message);
      }
    }
  });

  it('sends per-service and per-instance channels with sharded pub/sub, on the shard of the service slot, and patterns still see the other topics', async () => {
    const namespace = c.namespace();
    const options = { redis: c.url, namespace, registry: { heartbeatMs: 100, ttlMs: 1000 } };
    const server = new RedisRPCClient({ service: 'calc', ...options });
    const caller = new RedisRPCClient({ service: 'front', ...options });
    const watcher = new RedisClient({ service: 'audit', ...options });
    try {
      await Promise.all([server.connect(), caller.connect(), watcher.connect()]);
      await server.expose<[number, number]>('add', ([a, b]) => a + b);
      const events: unknown[] = [];
      await server.client.subscribe(serviceEvents('calc'), (payload) => void events.push(payload));
      const audited: string[] = [];
      await watcher.psubscribe('audit.*', (_payload, event) => void audited.push(event.topic));
      expect(await caller.callService('calc', 'add', 2, 3)).to.equal(5);
      expect(await caller.client.publish(serviceEvents('calc'), { n: 1 }), 'a shard channel counts exactly').to.equal(1);
      expect(await caller.client.publish('audit.login', 'u1')).to.be.at.least(0);
      await until(() => events.length === 1 && audited.length === 1);
      expect(audited).to.deep.equal(['audit.login']);

      const shards = await shardChannels(c, `${namespace}:*`);
      const calcMaster = await c.masterOf(`${namespace}:ic:{calc}:queries`);
      const onCalcShard = shards.get(calcMaster.port) ?? [];
      expect(onCalcShard).to.include.members([`${namespace}:service.{calc}.events`, `${namespace}:service.{calc}.rpc.${server.instanceId}`]);
      const frontMaster = await c.masterOf(`${namespace}:ic:{front}:queries`);
      expect(shards.get(frontMaster.port) ?? []).to.include(`${namespace}:intracom.rpc.reply.{front}.${caller.instanceId}.from.{calc}`);
      const everywhere = [...shards.values()].flat();
      // the hash tag is the first brace pair: a reply channel of front's from calc (`...{front}...from.{calc}`) is front's
      expect(everywhere.filter((ch) => /^[^{]*\{calc\}/.test(ch)).every((ch) => onCalcShard.includes(ch)), 'one service, one shard').to.equal(true);
      expect(everywhere.some((ch) => ch.includes('audit')), 'patterns and untagged topics are not sharded').to.equal(false);
    } finally {
      await Promise.all([server.close(), caller.close(), watcher.close()]);
    }
  });

  it('keeps everything classic with shardedPubSub: false, so that patterns see every topic', async () => {
    const namespace = c.namespace();
    const a = new RedisClient({ service: 'calc', redis: c.url, namespace, shardedPubSub: false });
    const b = new RedisClient({ service: 'ops', redis: c.url, namespace, shardedPubSub: false });
    try {
      await Promise.all([a.connect(), b.connect()]);
      const seen: string[] = [];
      await b.psubscribe('service.*.events', (_payload, event) => void seen.push(event.topic));
      await a.publish(serviceEvents('calc'), 1);
      await until(() => seen.length === 1);
      expect(seen).to.deep.equal(['service.calc.events']);
      expect([...(await shardChannels(c, `${namespace}:*`)).values()].flat()).to.deep.equal([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('names topics with the service hash tag only in sharded mode (the library\'s own channels always), and reads the topic back without it', () => {
    const sharded = new Names('ns', { shardChannels: true });
    const plain = new Names('ns');
    expect(sharded.channel('service.Tera.Users.events')).to.equal('ns:service.{Tera.Users}.events');
    expect(sharded.channel('module.users.rpc')).to.equal('ns:module.{users}.rpc');
    expect(sharded.rpcInstance('service.calc.rpc', 'i1')).to.equal('ns:service.{calc}.rpc.i1');
    expect(sharded.rpcReplies('calc', 'i1', 'web')).to.equal('ns:intracom.rpc.reply.{calc}.i1.from.{web}');
    expect(sharded.rpcInstance('service.calc.rpc', 'i1', 'web')).to.equal('ns:service.{calc}.rpc.i1.from.{web}');
    expect(sharded.variableChanged('calc', 'load')).to.equal('ns:intracom.var.{calc}.load');
    expect(sharded.channel('websocket.user.abc.events')).to.equal('ns:websocket.user.{abc}.events');
    expect(sharded.channel('audit.login')).to.equal('ns:audit.login');
    expect(sharded.channel('own.{tag}.x'), "a user's own tag is kept").to.equal('ns:own.{tag}.x');
    for (const topic of ['service.Tera.Users.events', 'module.users.rpc', 'audit.login', 'own.{tag}.x', 'websocket.user.abc.events']) {
      expect(sharded.topicOf(sharded.channel(topic))).to.equal(topic);
    }
    expect(sharded.topicOf(sharded.variableChanged('calc', 'load'))).to.equal('intracom.var.calc.load');
    expect(plain.channel('service.calc.events')).to.equal('ns:service.calc.events');
    expect(plain.rpcReplies('calc', 'i1', 'web')).to.equal('ns:intracom.rpc.reply.{calc}.i1.from.{web}');
    expect(plain.rpcInstance('module.users.rpc', 'i1', 'web')).to.equal('ns:module.{users}.rpc.i1.from.{web}');
    expect(plain.variableChanged('calc', 'load')).to.equal('ns:intracom.var.{calc}.load');
    expect(plain.topicOf(plain.variableChanged('calc', 'load'))).to.equal('intracom.var.calc.load');
  });

  it('reports a RedisRoute on Sentinel as such, connected to the master the sentinels name', async () => {
    const route = new RedisRoute({ sentinels: s.sentinels, name: s.name }, routeOptions());
    await route.connect();
    try {
      expect(route.topology).to.equal('sentinel');
      const master = await s.master();
      expect((route.publisher as Redis).stream.remotePort).to.equal(master.port);
    } finally {
      await route.close();
    }
  });

  it('connects again a Sentinel connection that ioredis ended on its own (its failover detector fired during a reconnect), in a route and in a mutex', async () => {
    const namespace = s.namespace();
    const client = new RedisClient({ service: 'revived', redis: s.url, namespace });
    const mutex = new RedisMutex({ redis: s.url, namespace });
    try {
      await client.connect();
      expect(await mutex.P('revived', 'n1', 10_000)).to.equal(true);
      const route = client.route as RedisRoute;
      const mutexConnection = (mutex as unknown as { connection: { redis: Redis } }).connection.redis;
      for (const connection of [route.publisher as Redis, mutexConnection]) {
        // what a +switch-master does when it reaches the detector of a connection that is reconnecting
        const ended = new Promise((resolve) => connection.once('end', resolve));
        connection.once('connecting', () => (connection as unknown as { connector: { disconnect(): void } }).connector.disconnect());
        connection.stream.destroy();
        await ended;
        await until(() => connection.status === 'ready', 5000, 'the ended connection to be connected again');
      }
      await until(() => route.status === 'ready', 5000, 'the route to be ready again');
      expect((await client.instances()).map((i) => i.instanceId)).to.deep.equal([client.instanceId]);
      expect(await mutex.V('revived')).to.equal(true);
    } finally {
      await mutex.close();
      await client.close();
    }
  });

  it('the CLI refuses a plain URL to a cluster node with the TopologyError, and a bad cluster or Sentinel URL with a ValidationError', async () => {
    const results = await Promise.all([
      runCli(['--redis', c.seeds[0], 'status']),
      runCli(['--redis', 'redis+cluster://127.0.0.1:1/3', 'status']),
      runCli(['--redis', 'redis+sentinel://127.0.0.1:1', 'status']),
      runCli(['--redis', `redis+cluster://127.0.0.1:${s.sentinels[0].port}`, 'status']),
      runCli(['--redis', s.url.replace(/\/[^/]+$/, '/nosuchmaster'), 'status']),
    ]);
    const [node, clusterPath, sentinelName, seedOnSentinel, unknownMaster] = results;
    for (const [result, message] of [
      [seedOnSentinel, /^intracom: TopologyError: .*is a Redis Sentinel, not a cluster node/],
      [unknownMaster, /^intracom: TopologyError: .*no sentinel monitors a master named "nosuchmaster"/],
    ] as const) {
      expect(result.code, `exit 3: ${result.stderr}`).to.equal(3);
      expect(result.stderr).to.match(message);
    }
    expect(node.code, 'exit 3').to.equal(3);
    expect(node.stderr).to.match(/^intracom: TopologyError: Redis at redis:\/\/127.0.0.1:\d+: it runs in cluster mode: connect with redis\+cluster:\/\//);
    expect(clusterPath.code, 'exit 2').to.equal(2);
    expect(clusterPath.stderr).to.match(/ValidationError/).and.to.match(/takes no path/);
    expect(sentinelName.code, 'exit 2').to.equal(2);
    expect(sentinelName.stderr).to.match(/ValidationError/).and.to.match(/needs the master name/);
  });

  for (const kind of ['cluster', 'sentinel'] as const) {
  it(`runs the CLI on ${kind === 'cluster' ? 'a cluster: status scans every master, call reaches an instance, watch finds shard channels' : 'Sentinel: status, call and watch reach the master the sentinels name'}`, async () => {
    const deployment = kind === 'cluster' ? c : s;
    const namespace = deployment.namespace();
    const server = new RedisRPCClient({ service: 'calc', redis: deployment.url, namespace });
    const mutex = new RedisMutex({ redis: deployment.url, namespace });
    try {
      await server.connect();
      await server.expose<[number, number]>('add', ([a, b]) => a + b);
      await server.client.subscribe(serviceEvents('calc'), () => undefined);
      expect(await mutex.P('nightly', 'n1', 60_000)).to.equal(true);
      const global = ['--redis', deployment.url, '--namespace', namespace];
      const [status, call] = await Promise.all([runCli([...global, 'status', '--json']), runCli([...global, 'call', 'calc', 'add', '[2, 3]'])]);
      expect(status.code, status.stderr).to.equal(0);
      const report = JSON.parse(status.stdout) as StatusReport;
      expect(report.services.find((s) => s.service === 'calc')?.instances.map((i) => i.instanceId)).to.deep.equal([server.instanceId]);
      expect(report.mutexes.map((m) => m.mutexId)).to.deep.equal(['nightly']);
      expect(call.code, call.stderr).to.equal(0);
      expect(call.stdout.trim()).to.equal('5');
      const watch = startCli([...global, 'watch', 'service.calc.*', '--count', '1', '--json']);
      await watch.stderrIncludes('watching', 30_000);
      const sender = new RedisClient({ service: 'front', redis: deployment.url, namespace });
      await sender.connect();
      // until the watcher has subscribed (on a cluster: its next discovery round, to the shard channel)
      await until(async () => (await sender.publish(serviceEvents('calc'), { hello: 1 })) === 2, 5000);
      const { code, stdout, stderr } = await watch.result;
      await sender.close();
      expect(code, stderr).to.equal(0);
      expect(JSON.parse(stdout.trim().split('\n')[0])).to.deep.include({ channel: 'service.calc.events', kind: 'event' });
    } finally {
      await mutex.close();
      await server.close();
    }
  });
  }
});
