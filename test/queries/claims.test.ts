/**
 * Durable queries off the happy path, on both routes: slow handlers keep
 * their claim (the visibility timeout bounds one query, not a batch), a
 * handler that outruns its claim with autoExtend off is redelivered, copies
 * of one queryId run once whoever sends them and whichever instance reads
 * them, and a consumer group that vanishes is recreated (at once, even while
 * every instance is in a handler), counted and logged once, without running a
 * held query twice or spending the deliveries of one waiting in its entry.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import Redis from 'ioredis';
import pino from 'pino';
import { Writable } from 'node:stream';
import { MemoryBus } from '../../src/route/MemoryBus';
import type { QueryContext } from '../../src/queues/QueryHandlers';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { RedisRPCClientOptions } from '../../src/rpc/RedisRPCClientOptions';
import { Names } from '../../vars/names';
import { until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

interface Setup {
  options(service: string, extra?: Partial<RedisRPCClientOptions>): RedisRPCClientOptions;
  /** Removes a consumer group behind the clients' backs (XGROUP DESTROY). */
  destroyGroup(stream: string, group: string): Promise<void>;
  /** Writes a hash field behind the clients' backs (the redis route only). */
  hset?(key: string, field: string, value: string): Promise<void>;
  names: Names;
  dispose(): Promise<void>;
}

async function memory(): Promise<Setup> {
  const bus = new MemoryBus();
  return {
    options: (service, extra = {}) => ({ service, route: 'memory', memoryBus: bus, registry: { heartbeatMs: 50, ttlMs: 400 }, ...extra }) as RedisRPCClientOptions,
    destroyGroup: async (stream, group) => bus.streams.destroyGroup(stream, group),
    names: new Names(''),
    dispose: async () => undefined,
  };
}

async function redis(): Promise<Setup> {
  const server: TestRedis = await startRedis();
  const admin = new Redis(server.url);
  return {
    options: (service, extra = {}) => ({ service, redis: server.url, namespace: server.namespace, registry: { heartbeatMs: 50, ttlMs: 400 }, ...extra }) as RedisRPCClientOptions,
    destroyGroup: async (stream, group) => void (await admin.xgroup('DESTROY', stream, group)),
    hset: async (key, field, value) => void (await admin.hset(key, field, value)),
    names: new Names(server.namespace),
    dispose: async () => {
      admin.disconnect();
      await server.stop();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

for (const make of [memory, redis]) {
  describe(`durable query claims on the ${make === memory ? 'memory' : 'redis'} route`, function () {
    this.timeout(60_000);
    let setup: Setup;
    let clients: RedisRPCClient[];
    let service: string;
    const client = async (name: string, extra: Partial<RedisRPCClientOptions> = {}): Promise<RedisRPCClient> => {
      const created = new RedisRPCClient(setup.options(name, extra));
      clients.push(created);
      await created.connect();
      return created;
    };
    /** Resolves once every query sent to `service` was delivered and acknowledged: none can run again. */
    const drained = async (sender: RedisRPCClient, what: string): Promise<void> => {
      await until(
        async () => {
          const status = await sender.queueStatus(service);
          return status.fireAndForget.depth === 0 && status.fireAndForget.pending === 0;
        },
        30_000,
        what,
      );
    };

    before(async () => {
      setup = await make();
    });
    after(async () => {
      await setup.dispose();
    });
    beforeEach(() => {
      clients = [];
      service = `svc${Math.random().toString(36).slice(2, 8)}`;
    });
    afterEach(async () => {
      await Promise.all(clients.map((c) => c.close()));
    });

    /** Opens when the test says: a handler held in place (while the group is destroyed, while a backlog builds). */
    const gate = (): { wait: Promise<void>; open: () => void } => {
      let open = (): void => undefined;
      const wait = new Promise<void>((resolve) => (open = resolve));
      return { wait, open };
    };

    it('10 queries of 100 ms in one entry, visibilityTimeoutMs 400, two instances: each processed exactly once', async () => {
      const runs = new Map<number, number>();
      const queues = { visibilityTimeoutMs: 400, blockMs: 50 };
      for (const instance of [await client(service, { queues }), await client(service, { queues })]) {
        instance.handle('slow', async (query: { i: number }) => {
          runs.set(query.i, (runs.get(query.i) ?? 0) + 1);
          await sleep(100);
        });
      }
      const sender = await client('sender', { queues: { consume: false } });
      // one tick: one entry of 10 queries, 1,000 ms of handling for one consumer
      await Promise.all(Array.from({ length: 10 }, (_, i) => sender.fireAndForget(service, 'slow', { i })));
      await drained(sender, 'all 10 acknowledged');
      expect([...runs.keys()].sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect([...runs.values()], 'runs per query').to.deep.equal(Array(10).fill(1));
    });

    it('a claim value not written by the protocol holds nothing: each such query runs once, on its first delivery', async function () {
      if (setup.hset === undefined) this.skip(); // the memory route keeps its claims as objects, not strings
      const garbled = ['garbage', 'abc def ghi', '', '12 34', 'NaN 1-0 someone'];
      const ids = garbled.map((_, i) => `garbled-${service}-${i}`);
      for (const [i, value] of garbled.entries()) await setup.hset(setup.names.queryClaims(service, 'workers'), ids[i], value);
      const attempts = new Map<string, number[]>();
      const instance = await client(service, { queues: { blockMs: 50 } });
      instance.handle('job', (_query, context) => void attempts.set(context.queryId, [...(attempts.get(context.queryId) ?? []), context.processAttempts]));
      const sender = await client('sender', { queues: { consume: false } });
      for (const queryId of ids) await sender.fireAndForget(service, 'job', null, { queryId });
      await drained(sender, 'every query acknowledged');
      expect(Object.fromEntries(attempts), 'each ran once, on its first delivery').to.deep.equal(Object.fromEntries(ids.map((id) => [id, [1]])));
    });

    it('a handler running 3x the visibility timeout keeps its claim: not redelivered, one attempt', async () => {
      const attempts: number[] = [];
      const queues = { visibilityTimeoutMs: 300, blockMs: 50 };
      for (const instance of [await client(service, { queues }), await client(service, { queues })]) {
        instance.handle('long', async (_query, context) => {
          attempts.push(context.processAttempts);
          await sleep(900);
        });
      }
      const sender = await client('sender', { queues: { consume: false } });
      await sender.fireAndForget(service, 'long', null);
      await drained(sender, 'the long query acknowledged');
      expect(attempts).to.deep.equal([1]);
    });

    it('autoExtend off: a handler has visibilityTimeoutMs, extend(ms) buys more, and a handler that outruns its claim is redelivered', async () => {
      const seen: Array<{ instance: string; attempt: number; kept?: boolean }> = [];
      const queues = { visibilityTimeoutMs: 300, blockMs: 50, autoExtend: false };
      let unstall = (): void => undefined;
      const stalled = new Promise<void>((resolve) => (unstall = resolve));
      const one = await client(service, { queues });
      const two = await client(service, { queues });
      for (const instance of [one, two]) {
        instance.handle('extends', async (_query, context: QueryContext) => {
          const record = { instance: instance.instanceId, attempt: context.processAttempts, kept: undefined as boolean | undefined };
          seen.push(record);
          record.kept = await context.extend(1200);
          await sleep(900);
        });
        // the first delivery hangs for good (a stuck call); the redelivery finishes
        instance.handle('hangs', async (_query, context: QueryContext) => {
          seen.push({ instance: instance.instanceId, attempt: context.processAttempts });
          if (context.processAttempts === 1) await stalled;
        });
      }
      const sender = await client('sender', { queues: { consume: false } });
      await sender.fireAndForget(service, 'extends', null);
      await drained(sender, 'the extended query acknowledged');
      expect(seen).to.have.length(1);
      expect(seen[0]).to.include({ attempt: 1, kept: true });

      seen.length = 0;
      const processedBefore = one.queryStats().fireAndForget.processed + two.queryStats().fireAndForget.processed;
      await sender.fireAndForget(service, 'hangs', null);
      await until(() => seen.length >= 2, 10_000, 'the hung query redelivered');
      expect(seen.map((s) => s.attempt)).to.deep.equal([1, 2]);
      expect(seen[1].instance, 'the other instance takes it').to.not.equal(seen[0].instance);
      await drained(sender, 'the redelivered copy acknowledged');
      const stuck = seen[0].instance === one.instanceId ? one : two;
      expect(stuck.queryStats().fireAndForget.processed + (stuck === one ? two : one).queryStats().fireAndForget.processed - processedBefore).to.equal(1);
      // the stuck handler returns at last: its late completion changes nothing
      unstall();
      await stuck.close();
      expect(seen).to.have.length(2);
    });

    it('the same queryId sent twice, a tick apart and by two senders, to three instances: processed once', async () => {
      const runs = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        const instance = await client(service, { queues: { visibilityTimeoutMs: 2000, blockMs: 50 } });
        instance.handle('once', async (_query, context) => {
          runs.set(context.queryId, (runs.get(context.queryId) ?? 0) + 1);
          await sleep(20);
        });
      }
      const senders = [await client('sender-a', { queues: { consume: false } }), await client('sender-b', { queues: { consume: false } })];
      const ids = Array.from({ length: 12 }, (_, i) => `dup-${service}-${i}`);
      for (const queryId of ids) {
        await senders[0].fireAndForget(service, 'once', null, { queryId });
        await new Promise((resolve) => setImmediate(resolve));
        await senders[1].fireAndForget(service, 'once', null, { queryId });
      }
      await drained(senders[0], 'every copy acknowledged');
      expect([...runs.keys()].sort()).to.deep.equal([...ids].sort());
      expect([...runs.values()]).to.deep.equal(Array(12).fill(1));
    });

    it('copies of one queryId in consecutive entries of a backlog, claimed while the one before runs: processed once (FIRE_AND_FORGET and BROADCAST)', async () => {
      const runs = new Map<string, number>();
      const worker = await client(service, { queues: { visibilityTimeoutMs: 2000, blockMs: 20, batchSize: 2 } });
      const first = gate();
      worker.handle('hold', () => first.wait);
      worker.handle('copy', async (_query, context) => {
        const key = `${context.type}:${context.queryId}`;
        runs.set(key, (runs.get(key) ?? 0) + 1);
        await sleep(1);
      });
      const sender = await client('sender', { queues: { consume: false } });
      await sender.fireAndForget(service, 'hold', null);
      await sender.broadcast(service, 'hold', null);
      // while both consumers wait: entries [c0, c1], [c1, c2], ... so each entry shares an id with the next
      const ids = Array.from({ length: 11 }, (_, i) => `copy-${service}-${i}`);
      for (let i = 0; i + 1 < ids.length; i++) {
        const tick: Array<Promise<unknown>> = [];
        for (const queryId of [ids[i], ids[i + 1]]) {
          tick.push(sender.fireAndForget(service, 'copy', null, { queryId }), sender.broadcast(service, 'copy', null, { queryId }));
        }
        await Promise.all(tick);
      }
      first.open();
      await until(() => runs.size === 2 * ids.length, 10_000, 'every id run by both consumers');
      await drained(sender, 'every copy acknowledged');
      await sleep(50);
      expect([...runs.values()], JSON.stringify([...runs])).to.deep.equal(Array(2 * ids.length).fill(1));
      const stats = worker.queryStats();
      expect([stats.fireAndForget.duplicatesSuppressed, stats.broadcast.duplicatesSuppressed]).to.deep.equal([ids.length - 2, ids.length - 2]);
    });

    it('property: any interleaving of sends with repeated ids, from several senders, is processed once per id', async () => {
      const runs = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        const instance = await client(service, { queues: { visibilityTimeoutMs: 2000, blockMs: 20 } });
        instance.handle('p', async (_query, context) => {
          runs.set(context.queryId, (runs.get(context.queryId) ?? 0) + 1);
          if (Math.random() < 0.5) await sleep(Math.floor(Math.random() * 10));
        });
      }
      const senders = [await client('sender-a', { queues: { consume: false } }), await client('sender-b', { queues: { consume: false } })];
      let round = 0;
      const send = fc.record({ id: fc.integer({ min: 0, max: 5 }), sender: fc.integer({ min: 0, max: 1 }), wait: fc.constantFrom('none', 'tick', 'await') });
      await fc.assert(
        fc.asyncProperty(fc.array(send, { minLength: 1, maxLength: 25 }), async (sends) => {
          round += 1;
          runs.clear();
          const sent: Array<Promise<unknown>> = [];
          for (const { id, sender, wait } of sends) {
            const pending = senders[sender].fireAndForget(service, 'p', null, { queryId: `r${round}-${id}` });
            sent.push(pending);
            if (wait === 'tick') await new Promise((resolve) => setImmediate(resolve));
            if (wait === 'await') await pending;
          }
          await Promise.all(sent);
          await drained(senders[0], 'the round acknowledged');
          const distinct = new Set(sends.map((s) => `r${round}-${s.id}`));
          expect([...runs.keys()].sort()).to.deep.equal([...distinct].sort());
          expect([...runs.values()].every((count) => count === 1), JSON.stringify([...runs])).to.equal(true);
        }),
        { numRuns: 15 },
      );
    });

    it('a consumer group that disappears is created again, counted, and logged once', async () => {
      const lines: string[] = [];
      const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => void (lines.push(String(chunk)), done()) }));
      const worker = await client(service, { logger, queues: { visibilityTimeoutMs: 300, blockMs: 50 } });
      const got: number[] = [];
      worker.handle('n', (query: number) => void got.push(query));
      const sender = await client('sender', { queues: { consume: false } });
      await sender.fireAndForget(service, 'n', 1);
      await until(() => got.length === 1);
      await setup.destroyGroup(setup.names.queryStream(service), 'workers');
      await sender.fireAndForget(service, 'n', 2);
      await until(() => got.includes(2), 10_000, 'the query sent after the group vanished');
      expect(got).to.deep.equal([1, 2]);
      expect(worker.queryStats().fireAndForget.groupsRecreated).to.equal(1);
      const recreated = lines.filter((line) => line.includes('consumer group was gone'));
      expect(recreated, lines.join('')).to.have.length(1);
      expect(lines.filter((line) => line.includes('queue read failed')), 'no warning per retry').to.have.length(0);
    });

    const recreated = (instances: RedisRPCClient[]): number => instances.reduce((sum, i) => sum + i.queryStats().fireAndForget.groupsRecreated, 0);

    it('the group destroyed while both instances run a query: recreated at once, and neither query runs twice', async () => {
      const queues = { visibilityTimeoutMs: 300, blockMs: 50 };
      const instances = [await client(service, { queues }), await client(service, { queues })];
      const runs = new Map<number, number>();
      const gates = [gate(), gate()];
      for (const instance of instances) {
        instance.handle('held', async (i: number) => {
          runs.set(i, (runs.get(i) ?? 0) + 1);
          await gates[i].wait;
        });
      }
      const sender = await client('sender', { queues: { consume: false } });
      // one entry each, the second sent once the first is running: each instance runs one, and none reads the stream
      await sender.fireAndForget(service, 'held', 0);
      await until(() => runs.size === 1, 10_000, 'the first query running');
      await sender.fireAndForget(service, 'held', 1);
      await until(() => runs.size === 2, 10_000, 'the second query running');
      await setup.destroyGroup(setup.names.queryStream(service), 'workers');
      // renewals find the group gone: it is back before any handler ends
      await until(() => recreated(instances) === 1, 300 * 3, 'the group recreated while the handlers still run');
      // several visibility timeouts with the group recreated and both handlers running: the claims are kept
      await sleep(300 * 4);
      gates.forEach((g) => g.open());
      await drained(sender, 'both queries acknowledged');
      expect([...runs.entries()].sort(([a], [b]) => a - b)).to.deep.equal([[0, 1], [1, 1]]);
      expect(recreated(instances)).to.equal(1);
    });

    it('the group destroyed while an entry\'s second query waits behind its first: no delivery is burned, it runs once, not dead-lettered', async () => {
      const queues = { visibilityTimeoutMs: 300, blockMs: 50, maxAttempts: 2 };
      const instances = [await client(service, { queues }), await client(service, { queues })];
      const seen: Array<{ i: number; attempt: number }> = [];
      const first = gate();
      for (const instance of instances) {
        instance.handle('pair', async (i: number, context) => {
          seen.push({ i, attempt: context.processAttempts });
          if (i === 0) await first.wait;
        });
        instance.handle('warm', () => undefined);
      }
      const sender = await client('sender', { queues: { consume: false } });
      // the first send to a service checks that it exists: sends after it are written in the tick they are made
      await sender.fireAndForget(service, 'warm', null);
      await drained(sender, 'the warm-up acknowledged');
      // one tick: one entry of two queries; the instance that reads it runs 0 while 1 waits
      await Promise.all([sender.fireAndForget(service, 'pair', 0), sender.fireAndForget(service, 'pair', 1)]);
      await until(() => seen.length === 1, 10_000, 'the first query running');
      await setup.destroyGroup(setup.names.queryStream(service), 'workers');
      await until(() => recreated(instances) === 1, 300 * 3, 'the group recreated');
      // the idle instance re-reads the entry from the recreated group; time enough for maxAttempts idle reclaims
      await sleep(300 * 1.5 * 4);
      first.open();
      await drained(sender, 'the entry acknowledged');
      expect(seen).to.deep.equal([
        { i: 0, attempt: 1 },
        { i: 1, attempt: 1 },
      ]);
      expect(instances.map((i) => i.queryStats().fireAndForget.deadLettered)).to.deep.equal([0, 0]);
      expect(await sender.deadLetters(service)).to.deep.equal([]);
    });
  });
}
