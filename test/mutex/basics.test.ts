/**
 * RedisMutex in one process against a real Redis: the seed's P/V, inspection,
 * validation, waiting acquire, withMutex, extension and refresh, lost locks,
 * close, and the connections it accepts.
 */
import { once } from 'node:events';
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { AcquireAbortedError } from '../../src/errors/AcquireAbortedError';
import { AcquireTimeoutError } from '../../src/errors/AcquireTimeoutError';
import { LockLostError } from '../../src/errors/LockLostError';
import { NotConnectedError } from '../../src/errors/NotConnectedError';
import { ValidationError } from '../../src/errors/ValidationError';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import type { MutexLock } from '../../src/mutex/MutexLock';
import { Names } from '../../vars/names';
import { testTargets, type TestTarget } from '../support/redis-targets';
import { aclTarget } from '../support/acl';
import type { RedisCommands } from '../../src/route/connection';
import { rejection, thrown } from '../support/async';
import { nextLoss } from './nextLoss';


// and once as a service under its generated least-privilege ACL user, which declares the mutexes it takes (`m*`: the ids below)
const underAcl = aclTarget('billing', () => ({ services: { billing: { mutexes: ['m*'], inspect: true } } }));

for (const kind of [...testTargets(), underAcl]) describe(`RedisMutex${kind.suffix}`, function () {
  this.timeout(15_000);
  let redis: TestTarget;
  let raw: RedisCommands;
  let a: RedisMutex;
  let b: RedisMutex;
  let names: Names;
  let seq = 0;
  let id: string;

  before(async () => {
    redis = await kind.start();
    raw = redis.open();
    names = new Names(redis.namespace);
  });

  beforeEach(() => {
    id = `m${++seq}`;
    a = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'node-a' });
    b = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'node-b' });
  });

  afterEach(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  describe('P and V (seeds/001)', () => {
    it('P takes a free mutex once; a second P, here or elsewhere, is refused until V', async () => {
      expect(await a.P(id, 'node-a', 10_000)).to.equal(true);
      expect(await b.P(id, 'node-b', 10_000)).to.equal(false);
      expect(await a.P(id, 'node-a', 10_000), 'not re-entrant').to.equal(false);
      expect(await raw.exists(names.mutex(id))).to.equal(1);
      expect(await a.V(id)).to.equal(true);
      expect(await raw.exists(names.mutex(id))).to.equal(0);
      expect(await b.P(id, 'node-b', 10_000)).to.equal(true);
    });

    it('V answers false and changes nothing when this RedisMutex does not hold the mutex', async () => {
      expect(await a.V(id)).to.equal(false);
      expect(await b.P(id, 'node-b', 10_000)).to.equal(true);
      expect(await a.V(id)).to.equal(false);
      expect((await a.inspect(id)).takenBy).to.equal('node-b');
    });

    it('releases automatically after timeoutMs, reports the loss to the holder, and the late V does not release the new holder', async () => {
      const timeoutMs = 300;
      const before = Date.now();
      expect(await a.P(id, 'node-a', timeoutMs)).to.equal(true);
      expect(await b.P(id, 'node-b', timeoutMs)).to.equal(false);
      const loss = await nextLoss(a, id);
      expect(loss).to.be.instanceOf(LockLostError);
      expect(Date.now() - before, 'not before the timeout').to.be.at.least(timeoutMs);
      // (The holder counts its lease from before its SET left, so Redis may lag its notice by a hair.)
      const next = await b.acquire(id, { waitMs: 1000, retryDelayMs: 2, retryJitterMs: 2 });
      expect(next.nodeId).to.equal('node-b');
      expect(await a.V(id)).to.equal(false);
      expect((await b.inspect(id)).takenBy).to.equal('node-b');
    });

    it('refuses invalid ids, node ids and timeouts with a ValidationError naming the argument and the value', async () => {
      const cases: Array<[() => Promise<unknown>, RegExp]> = [
        [() => a.P('', 'n', 100), /mutexId .*received ""/],
        [() => a.P('has space', 'n', 100), /mutexId .*received "has space"/],
        [() => a.P('{slot}', 'n', 100), /mutexId .*received "\{slot\}"/],
        [() => a.P(42 as unknown as string, 'n', 100), /mutexId .*received 42/],
        [() => a.P('x', '', 100), /nodeId .*received ""/],
        [() => a.P('x', 'bad\nnode', 100), /nodeId .*received "bad\\nnode"/],
        [() => a.P('x', 'n', 0), /timeoutMs .*positive integer.*received 0/],
        [() => a.P('x', 'n', -5), /timeoutMs .*received -5/],
        [() => a.P('x', 'n', 1.5), /timeoutMs .*received 1\.5/],
        [() => a.P('x', 'n', Number.NaN), /timeoutMs .*received NaN/],
        [() => a.P('x', 'n', '100' as unknown as number), /timeoutMs .*received "100"/],
        [() => a.V(''), /mutexId .*received ""/],
        [() => a.acquire('x', { timeoutMs: 0 }), /timeoutMs option .*received 0/],
        [() => a.acquire('x', { waitMs: -1 }), /waitMs option .*received -1/],
        [() => a.withMutex('x', 'nope' as unknown as () => void), /fn must be a function; received "nope"/],
        [() => a.inspect('a*'), /mutexId .*received "a\*"/],
      ];
      for (const [call, message] of cases) {
        const error = await rejection(call());
        expect(error, String(message)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(message);
      }
      expect(await raw.exists(names.mutex('x'), names.mutexFence('x')), 'nothing was written').to.equal(0);
    });

    it('refuses bad options in the constructor, naming the option and the value', () => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ redis: 42 }, /redis must be .*received 42/],
        [{ redis: redis.url, namespace: 'bad ns' }, /namespace .*received "bad ns"/],
        [{ redis: redis.url, commandTimeoutMs: 0 }, /commandTimeoutMs .*received 0/],
        [{ redis: redis.url, defaultTimeoutMs: -1 }, /defaultTimeoutMs .*received -1/],
        [{ redis: redis.url, refreshRatio: 2 }, /refreshRatio .*received 2/],
        [{ redis: redis.url, retryDelayMs: Number.POSITIVE_INFINITY }, /retryDelayMs .*received Infinity/],
        [{ redis: redis.url, nodeId: '' }, /nodeId .*received ""/],
      ];
      for (const [options, message] of cases) {
        const error = thrown(() => new RedisMutex(options as never));
        expect(error, String(message)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(message);
      }
    });
  });

  describe('inspection', () => {
    it('reads the seed record of a free and of a held mutex', async () => {
      expect(await a.inspect(id)).to.deep.equal({ mutexId: id, taken: false, takenAt: null, takenBy: null, timeout: null, fence: null, expiresInMs: null });
      const before = Date.now();
      expect(await a.P(id, 'worker-7', 5000)).to.equal(true);
      const record = await b.inspect(id);
      expect(record).to.include({ mutexId: id, taken: true, takenBy: 'worker-7', timeout: 5000, fence: null });
      expect(Date.parse(record.takenAt as string)).to.be.within(before, Date.now());
      expect(record.expiresInMs).to.be.within(1, 5000);
      const lock = (await b.tryAcquire(`${id}-f`, { timeoutMs: 4000 })) as MutexLock;
      expect((await a.inspect(`${id}-f`)).fence).to.equal(lock.fence);
    });

    it('reads a lock value another writer garbled as taken, each unreadable field null (never NaN or an Invalid Date)', async () => {
      const cases: Array<[string, Partial<Record<'fence' | 'takenAt' | 'timeout' | 'takenBy', unknown>>]> = [
        ['a|b|c|d|e', { fence: null, takenAt: null, timeout: null, takenBy: 'e' }],
        ['t|-1|1.5|1e3|n', { fence: null, takenAt: null, timeout: null, takenBy: 'n' }],
        ['t|7|99999999999999999|5000|n', { fence: 7, takenAt: null, timeout: 5000, takenBy: 'n' }],
        ['t|||5000|n|with|bars', { fence: null, takenAt: null, timeout: 5000, takenBy: 'n|with|bars' }],
        ['no bars at all', { fence: null, takenAt: null, timeout: null, takenBy: null }],
      ];
      for (const [value, expected] of cases) {
        await raw.set(names.mutex(`${id}-g`), value, 'PX', 5000);
        const record = await a.inspect(`${id}-g`);
        expect(record, value).to.include({ taken: true, ...expected });
      }
    });

    it('lists every held mutex of its namespace and nothing else', async function () {
      // a second namespace is what a generated ACL refuses (test/security/acl.test.ts)
      if (kind === underAcl) this.skip();
      const other = new RedisMutex({ redis: redis.url, namespace: `${redis.namespace}x` });
      try {
        await a.P(`${id}-1`, 'node-a', 10_000);
        await b.acquire(`${id}-2`, { timeoutMs: 10_000 });
        await a.P(`${id}-3`, 'node-a', 10_000);
        await a.V(`${id}-3`);
        await other.P(`${id}-elsewhere`, 'node-x', 10_000);
        const listed = (await a.list()).filter((r) => r.mutexId.startsWith(id));
        expect(listed.map((r) => [r.mutexId, r.takenBy])).to.deep.equal([
          [`${id}-1`, 'node-a'],
          [`${id}-2`, 'node-b'],
        ]);
        expect(listed.every((r) => r.taken)).to.equal(true);
        expect((await other.list()).map((r) => r.mutexId)).to.deep.equal([`${id}-elsewhere`]);
      } finally {
        await other.close();
      }
    });
  });

  describe('acquire', () => {
    it('returns strictly increasing fencing tokens, kept in a counter beside the lock', async () => {
      const fences: number[] = [];
      for (let i = 0; i < 5; i++) {
        const lock = (await (i % 2 === 0 ? a : b).tryAcquire(id)) as MutexLock;
        fences.push(lock.fence as number);
        if (i === 2) await a.P(`${id}-unrelated`, 'node-a', 1000);
        await lock.release();
      }
      for (let i = 1; i < fences.length; i++) expect(fences[i]).to.be.greaterThan(fences[i - 1]);
      expect(Number(await raw.get(names.mutexFence(id)))).to.equal(fences[4]);
    });

    it('waits for a held mutex and takes it when released', async () => {
      const first = await a.acquire(id);
      const waiting = b.acquire(id, { waitMs: 5000, retryDelayMs: 5, retryJitterMs: 5 });
      let settled = false;
      void waiting.then(() => (settled = true));
      expect(await b.tryAcquire(id)).to.equal(null);
      expect(settled).to.equal(false);
      await first.release();
      const second = await waiting;
      expect(second.fence).to.be.greaterThan(first.fence as number);
      expect((await a.inspect(id)).takenBy).to.equal('node-b');
    });

    it('rejects with AcquireTimeoutError when the wait runs out', async () => {
      await a.acquire(id);
      const started = Date.now();
      // 600 ms: on a loaded machine, connecting and subscribing (a shard channel per wait on a cluster) can take 200 ms before the first attempt
      const error = (await rejection(b.acquire(id, { waitMs: 600, retryDelayMs: 10, retryJitterMs: 10 }))) as AcquireTimeoutError;
      expect(error).to.be.instanceOf(AcquireTimeoutError);
      expect(error.message).to.match(new RegExp(`"${id}" within 600 ms`));
      expect(error.attempts).to.be.greaterThan(1);
      expect(Date.now() - started).to.be.within(595, 2400);
    });

    it('stops waiting when its AbortSignal fires, holding nothing', async () => {
      await a.acquire(id);
      const controller = new AbortController();
      const waiting = b.acquire(id, { waitMs: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort(new Error('shutting down')), 50);
      const error = await rejection(waiting);
      expect(error).to.be.instanceOf(AcquireAbortedError);
      expect(error.message).to.match(/shutting down/);
      const aborted = await rejection(b.acquire(`${id}-free`, { signal: AbortSignal.abort() }));
      expect(aborted).to.be.instanceOf(AcquireAbortedError);
      expect((await a.inspect(`${id}-free`)).taken, 'an aborted acquire takes nothing').to.equal(false);
    });
  });

  describe('withMutex', () => {
    it('returns what fn returns and releases the mutex', async () => {
      const result = await a.withMutex(id, async (signal, lock) => {
        expect(signal.aborted).to.equal(false);
        expect((await b.inspect(id)).fence).to.equal(lock.fence);
        return 42;
      });
      expect(result).to.equal(42);
      expect((await b.inspect(id)).taken).to.equal(false);
    });

    it('releases the mutex when fn throws, and rethrows', async () => {
      const boom = new Error('boom');
      const error = await rejection(
        a.withMutex(id, async () => {
          throw boom;
        }),
      );
      expect(error).to.equal(boom);
      expect((await b.inspect(id)).taken).to.equal(false);
    });

    it('refreshes the lock so that a critical section longer than the timeout stays exclusive', async () => {
      const timeoutMs = 300;
      const seen: Array<MutexLock | null> = [];
      await a.withMutex(
        id,
        async (signal) => {
          for (let i = 0; i < 4; i++) {
            await new Promise((resolve) => setTimeout(resolve, timeoutMs / 2)); // the section's own work
            seen.push(await b.tryAcquire(id));
          }
          expect(signal.aborted).to.equal(false);
        },
        { timeoutMs },
      );
      expect(seen).to.deep.equal([null, null, null, null]);
      expect((await b.inspect(id)).taken).to.equal(false);
    });

    it('fires the signal and rejects with LockLostError when the lock is lost during fn', async () => {
      const lost = nextLoss(a, id);
      const error = await rejection(
        a.withMutex(
          id,
          async (signal) => {
            await raw.del(names.mutex(id)); // someone removed it (an operator, a failover)
            expect(await b.P(id, 'node-b', 10_000)).to.equal(true);
            await once(signal, 'abort');
            expect(signal.reason).to.be.instanceOf(LockLostError);
            return 'finished anyway';
          },
          { timeoutMs: 300 },
        ),
      );
      expect(error).to.be.instanceOf(LockLostError);
      expect((await lost).mutexId).to.equal(id);
      expect((await a.inspect(id)).takenBy, 'the new holder keeps it').to.equal('node-b');
    });

    it('notices a lease that ran out while the event loop was blocked', async () => {
      const lock = await a.acquire(id, { timeoutMs: 200, autoRefresh: true });
      const until = Date.now() + 350;
      while (Date.now() < until) {
        // a synchronous stall: no timer, no refresh can run
      }
      expect(lock.held).to.equal(false);
      expect(() => lock.assertHeld()).to.throw(LockLostError);
      expect(lock.signal.aborted).to.equal(true);
      expect(await b.P(id, 'node-b', 1000), 'it really expired').to.equal(true);
    });
  });

  describe('extend', () => {
    it('extends a held lock and refuses to re-create an expired one', async () => {
      expect(await a.P(id, 'node-a', 200)).to.equal(true);
      expect(await a.extend(id, 5000)).to.equal(true);
      expect((await b.inspect(id)).expiresInMs).to.be.greaterThan(1000);
      expect(await b.extend(id, 5000), 'not held by b').to.equal(false);

      const lock = await a.acquire(`${id}-short`, { timeoutMs: 150 });
      await nextLoss(a, `${id}-short`);
      // the holder counts its time from before its command reached Redis, so it gives the lock up a little early
      const deadline = Date.now() + 1000;
      while ((await b.inspect(`${id}-short`)).taken && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      const error = await rejection(lock.extend(5000));
      expect(error).to.be.instanceOf(LockLostError);
      expect((await b.inspect(`${id}-short`)).taken).to.equal(false);
    });
  });

  describe('close', () => {
    it('releases what it holds, fires the signals of running sections, and refuses later calls', async () => {
      await a.P(id, 'node-a', 60_000);
      const lock = await a.acquire(`${id}-2`, { timeoutMs: 60_000 });
      const signal = lock.signal;
      await a.close();
      expect(signal.aborted).to.equal(true);
      expect((await b.inspect(id)).taken).to.equal(false);
      expect((await b.inspect(`${id}-2`)).taken).to.equal(false);
      expect(await rejection(a.P(id, 'node-a', 1000))).to.be.instanceOf(NotConnectedError);
    });
  });

  describe('connections', () => {
    it('shares the command connection of a RedisClient, with its namespace, and leaves the client open', async () => {
      const client = new RedisClient({ service: 'billing', redis: redis.url, namespace: redis.namespace });
      await client.connect();
      const mutex = new RedisMutex({ redis: client });
      try {
        expect(mutex.nodeId).to.equal(`billing:${client.instanceId}`);
        const lock = (await mutex.tryAcquire(id)) as MutexLock;
        expect(await raw.exists(names.mutex(id))).to.equal(1);
        expect((await a.inspect(id)).takenBy).to.equal(`billing:${client.instanceId}`);
        await lock.release();
        await mutex.close();
        expect(client.status).to.equal('ready');
      } finally {
        await client.close();
      }
    });

    it('uses an ioredis instance given to it and leaves it open', async () => {
      const connection = redis.open();
      const mutex = new RedisMutex({ redis: connection, namespace: redis.namespace });
      expect(await mutex.P(id, 'n', 1000)).to.equal(true);
      await mutex.close();
      expect(await connection.ping()).to.equal('PONG');
      expect(await raw.exists(names.mutex(id)), 'released on close').to.equal(0);
      connection.disconnect();
    });
  });
});
