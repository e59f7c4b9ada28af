/**
 * The hand-over: a release gives the mutex at once to the first live waiter,
 * in arrival order, with the seed's record and a fresh fencing token; a
 * waiter that gave up or crashed never blocks the others; and a hand-over
 * whose notice was lost is found by the waiter's next attempt. Every waiter
 * here retries only every few seconds, so that anything faster than that is
 * the hand-over itself. The Redis part runs on one server, on a cluster (where
 * the wake channel is a shard channel per mutex) and on Sentinel.
 */
import { expect } from 'chai';
import type { Cluster, Redis } from 'ioredis';
import { RedisClient } from '../../src/client/RedisClient';
import { AcquireAbortedError } from '../../src/errors/AcquireAbortedError';
import { AcquireTimeoutError } from '../../src/errors/AcquireTimeoutError';
import type { MutexLock } from '../../src/mutex/MutexLock';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import type { AcquireOptions } from '../../src/mutex/RedisMutexOptions';
import { MemoryBus } from '../../src/route/MemoryBus';
import { Names } from '../../vars/names';
import { rejection, until } from '../support/async';
import { spawnPeer, type Peer } from '../support/processes';
import type { RedisCommands } from '../../src/route/connection';
import { testTargets, type TestTarget } from '../support/redis-targets';
import { aclTarget } from '../support/acl';

/** Waiters' own attempts come this rarely: a hand-over faster than this was not found by polling. */
const SLOW_RETRY = { retryDelayMs: 4000, retryJitterMs: 0, waitMs: 20_000 };

// and under a service's generated least-privilege ACL user, which declares the mutexes it takes (the ids below)
const underAcl = aclTarget('billing', () => ({ services: { billing: { mutexes: ['closing', 'crash', 'cut-wake', 'fifo', 'forged', 'frozen', 'garbled', 'job', 'leave', 'local', 'local-quit-*', 'lost-notice', 'stale'] } } }));

for (const kind of [...testTargets(), underAcl]) describe(`RedisMutex hand-over${kind.suffix}`, function () {
  this.timeout(30_000);
  let redis: TestTarget;
  let raw: RedisCommands;
  let names: Names;
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    redis = await kind.start();
    raw = redis.open();
    names = new Names(redis.namespace);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  const routes: Array<{ route: string; instances: (count: number) => Promise<{ mutexes: RedisMutex[]; queued: (id: string) => Promise<number> }> }> = [
    {
      route: 'redis',
      instances: async (count) => {
        const mutexes = Array.from({ length: count }, (_, i) => new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: `node-${i}` }));
        for (const mutex of mutexes) closers.push(() => mutex.close());
        return { mutexes, queued: (id) => raw.zcard(names.mutexQueue(id)) };
      },
    },
    {
      route: 'memory',
      instances: async (count) => {
        const bus = new MemoryBus();
        const mutexes: RedisMutex[] = [];
        for (let i = 0; i < count; i++) {
          const client = new RedisClient({ service: 'handover', route: 'memory', memoryBus: bus });
          await client.connect();
          const mutex = new RedisMutex({ redis: client, nodeId: `node-${i}` });
          mutexes.push(mutex);
          closers.push(() => client.close());
          closers.push(() => mutex.close());
        }
        // the memory route keeps its queue out of sight: count the waiters that attempted, by their effect
        let waiting = 0;
        for (const mutex of mutexes) {
          const attempt = mutex.attempt.bind(mutex);
          mutex.attempt = async (...args) => {
            const reply = await attempt(...args);
            if (reply[0] === 0 && args[2] !== null) waiting++;
            return reply;
          };
        }
        return { mutexes, queued: async () => waiting };
      },
    },
  ];

  // the memory route does not depend on the deployment: once is enough
  for (const { route, instances } of routes.filter((r) => r.route === 'redis' || kind.kind === 'redis')) {
    describe(`on the ${route} route`, () => {
      it('hands the mutex to a waiter as soon as it is released, with the seed record and a greater fence', async () => {
        const { mutexes: [a, b], queued } = await instances(2);
        const held = await a.acquire('job', { timeoutMs: 10_000 });
        const waiting = b.acquire('job', { ...SLOW_RETRY, timeoutMs: 7000 });
        await until(async () => (await queued('job')) >= 1, 5000, 'the waiter to queue');
        const releasedAt = Date.now();
        expect(await held.release()).to.equal(true);
        const lock = await waiting;
        expect(Date.now() - releasedAt, 'handed over, not found by a retry').to.be.below(1000);
        expect(lock.fence).to.be.greaterThan(held.fence as number);
        expect(lock.held).to.equal(true);
        expect(lock.expiresAt).to.be.at.most(Date.now() + 7000);
        const record = await a.inspect('job');
        expect(record).to.include({ taken: true, takenBy: 'node-1', timeout: 7000, fence: lock.fence });
        expect(Date.parse(record.takenAt as string)).to.be.within(releasedAt - 1000, Date.now() + 1000);
        expect(record.expiresInMs).to.be.within(5000, 7000);
        expect(await lock.release()).to.equal(true);
        expect((await a.inspect('job')).taken).to.equal(false);
      });

      // the confirmation is the waiter's own step (one extension), the same on every deployment: on one server only
      if (kind.suffix === '') it('a hand-over that comes when more than half the waiter\'s lease (counted from its last attempt) is gone is confirmed by an extension: a held lock with a full lease, and withMutex runs fn', async function () {
        this.timeout(20_000);
        const { mutexes: [a, b], queued } = await instances(2);
        const lost: unknown[] = [];
        b.on('lost', (error) => lost.push(error));
        // lease 1000 ms, attempts 4 s apart: released 1.5 s after the waiter's attempt, its own count has 0 ms left
        const stale = { timeoutMs: 1000, retryDelayMs: 4000, retryJitterMs: 0, waitMs: 20_000 };
        for (const run of ['acquire', 'withMutex'] as const) {
          const held = await a.acquire('stale', { timeoutMs: 10_000 });
          const queuedAt = Date.now();
          const waiting = run === 'acquire' ? b.acquire('stale', stale) : b.withMutex('stale', (signal, lock) => ({ aborted: signal.aborted, held: lock.held, left: lock.expiresAt - Date.now() }), stale);
          await until(async () => (await queued('stale')) >= 1, 5000, 'the waiter to queue');
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, queuedAt + 1500 - Date.now())));
          const releasedAt = Date.now();
          expect(await held.release()).to.equal(true);
          const outcome = await waiting;
          expect(Date.now() - releasedAt, 'handed over, not found by a retry').to.be.below(1000);
          if (run === 'acquire') {
            const lock = outcome as MutexLock;
            expect(lock.held, 'held, not lost on arrival').to.equal(true);
            expect(lock.expiresAt - Date.now(), 'a lease counted from the confirmation').to.be.above(500);
            expect((await a.inspect('stale')).expiresInMs, 'Redis keeps it as long').to.be.above(500);
            lock.assertHeld();
            expect(await lock.release()).to.equal(true);
          } else {
            const ran = outcome as { aborted: boolean; held: boolean; left: number };
            expect(ran.aborted).to.equal(false);
            expect(ran.held).to.equal(true);
            expect(ran.left).to.be.above(500);
          }
        }
        expect(lost, 'no lock reported lost').to.deep.equal([]);
        expect((await a.inspect('stale')).taken).to.equal(false);
      });

      it('serves waiters in the order they arrived', async () => {
        const { mutexes, queued } = await instances(5);
        const [holder, ...waiters] = mutexes;
        const held = await holder.acquire('fifo');
        const order: number[] = [];
        const done: Array<Promise<void>> = [];
        for (const [index, waiter] of [3, 0, 2, 1].map((i) => [i, waiters[i]] as const)) {
          done.push(
            waiter.acquire('fifo', SLOW_RETRY).then(async (lock: MutexLock) => {
              order.push(index);
              await lock.release();
            }),
          );
          await until(async () => (await queued('fifo')) >= done.length, 5000, `waiter ${index} to queue`);
        }
        const releasedAt = Date.now();
        await held.release();
        await Promise.all(done);
        expect(order).to.deep.equal([3, 0, 2, 1]);
        expect(Date.now() - releasedAt, 'four hand-overs, none found by a retry').to.be.below(2000);
      });

      it('a waiter that gives up leaves the queue: the next release skips it, and a later P finds the mutex free', async () => {
        const { mutexes: [a, b, c], queued } = await instances(3);
        const held = await a.acquire('leave');
        const controller = new AbortController();
        const quitter = b.acquire('leave', { ...SLOW_RETRY, signal: controller.signal });
        await until(async () => (await queued('leave')) >= 1, 5000, 'the first waiter to queue');
        const timedOut = c.acquire('leave', { ...SLOW_RETRY, waitMs: 300 });
        controller.abort(new Error('no longer needed'));
        expect(await rejection(quitter)).to.be.instanceOf(AcquireAbortedError);
        expect(await rejection(timedOut)).to.be.instanceOf(AcquireTimeoutError);
        if (route === 'redis') expect(await raw.exists(names.mutexQueue('leave'), names.mutexWaiters('leave'))).to.equal(0);
        expect(await held.release()).to.equal(true);
        expect((await a.inspect('leave')).taken, 'handed to nobody').to.equal(false);
        expect(await c.P('leave', 'node-2', 1000)).to.equal(true);
      });

      it('a release hands the mutex to an acquire waiting in the same RedisMutex by its reply, without a notice, in arrival order', async () => {
        const { mutexes: [local, remote], queued } = await instances(2);
        const held = await local.acquire('local');
        const order: string[] = [];
        const remoteFirst = remote.acquire('local', SLOW_RETRY).then(async (lock) => {
          order.push('remote');
          await lock.release();
        });
        await until(async () => (await queued('local')) >= 1, 5000, 'the remote waiter to queue');
        const localNext = local.acquire('local', SLOW_RETRY);
        await until(async () => (await queued('local')) >= 2, 5000, 'the local waiter to queue');
        await held.release(); // the remote waiter arrived first: it is told by its notice
        await remoteFirst;
        const lock = await localNext;
        order.push('local');
        expect(order, 'arrival order across processes and within one').to.deep.equal(['remote', 'local']);

        // now with the local waiter first: the release's own reply hands it over
        const again = local.acquire('local', SLOW_RETRY);
        await until(async () => (await queued('local')) >= 1, 5000, 'the local waiter to queue again');
        const notices: string[] = [];
        const listener = route === 'redis' && kind.kind !== 'cluster' ? (redis.open() as Redis) : undefined;
        try {
          if (listener) {
            const [entry] = await raw.zrange(names.mutexQueue('local'), '0', '0');
            listener.on('smessage', (_channel: string, message: string) => notices.push(message));
            await listener.ssubscribe(names.mutexWake(entry.slice(0, 12), 'local'));
          }
          const releasedAt = Date.now();
          expect(await lock.release()).to.equal(true);
          const next = await again;
          expect(Date.now() - releasedAt, 'handed over, not found by a retry').to.be.below(1000);
          expect(next.fence).to.be.greaterThan(lock.fence as number);
          expect((await local.inspect('local')).fence).to.equal(next.fence);
          if (listener) {
            await listener.ping(); // on the same server: a notice published before this reply has arrived
            expect(notices, 'no notice for a waiter of the releasing RedisMutex').to.deep.equal([]);
          }
          expect(await next.release()).to.equal(true);
          expect((await local.inspect('local')).taken).to.equal(false);
        } finally {
          listener?.disconnect();
        }
      });

      it('a waiter of the releasing RedisMutex that gives up at the moment it is handed the mutex passes it on at once', async () => {
        const { mutexes: [local, remote], queued } = await instances(2);
        for (let round = 0; round < 3; round++) {
          const id = `local-quit-${round}`;
          const held = await local.acquire(id);
          const controller = new AbortController();
          const quitting = local.acquire(id, { ...SLOW_RETRY, signal: controller.signal });
          await until(async () => (await queued(id)) >= 1, 5000, 'the local waiter to queue');
          const next = remote.acquire(id, SLOW_RETRY);
          await until(async () => (await queued(id)) >= 2, 5000, 'the remote waiter to queue');
          const releasedAt = Date.now();
          const released = held.release();
          if (round === 0) controller.abort(new Error('gave up')); // before the reply hands it over
          await released;
          if (round === 1) controller.abort(new Error('gave up')); // the reply has handed it over: too late to give up
          if (round === 2) queueMicrotask(() => controller.abort(new Error('gave up')));
          const outcome = await quitting.then(
            async (lock) => {
              await lock.release();
              return 'held';
            },
            (error: unknown) => (error as Error).name,
          );
          expect(['held', 'AcquireAbortedError'], `round ${round}`).to.include(outcome);
          const lock = await next;
          expect(Date.now() - releasedAt, `round ${round}: passed on at once, not at a retry or the timeout`).to.be.below(1500);
          expect(lock.nodeId).to.equal('node-1');
          expect(await lock.release()).to.equal(true);
        }
      });

      it('a waiter whose RedisMutex closes leaves the queue and rejects at once', async () => {
        const { mutexes: [a, b, c], queued } = await instances(3);
        const held = await a.acquire('closing');
        const closing = b.acquire('closing', SLOW_RETRY);
        await until(async () => (await queued('closing')) >= 1, 5000, 'the waiter to queue');
        const next = c.acquire('closing', SLOW_RETRY);
        await until(async () => (await queued('closing')) >= 2, 5000, 'the second waiter to queue');
        const startedAt = Date.now();
        const rejected = rejection(closing);
        await b.close();
        expect((await rejected).name).to.equal('NotConnectedError');
        expect(Date.now() - startedAt).to.be.below(1000);
        await held.release();
        const lock = await next;
        expect(lock.nodeId).to.equal('node-2');
        await lock.release();
      });
    });
  }

  describe('on Redis, across processes', () => {
    const peers: Peer[] = [];
    afterEach(async () => {
      await Promise.all(peers.splice(0).map((peer) => peer.kill()));
    });

    /** A holder of `id`, a peer process queued first (node `doomed`, lease `timeoutMs`), and a survivor queued behind it. */
    async function doomedQueue(id: string, timeoutMs: number, survivorOptions: AcquireOptions) {
      const peer = spawnPeer('test/mutex/peers/holder.ts', { REDIS_URL: redis.url, NAMESPACE: redis.namespace });
      peers.push(peer);
      await peer.next((m: { type: string }) => m.type === 'ready', 30_000);
      const holder = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'holder' });
      const survivor = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'survivor' });
      closers.push(() => holder.close(), () => survivor.close());
      const held = await holder.acquire(id);
      peer.send({ op: 'acquire', id, nodeId: 'doomed', timeoutMs, waitMs: 20_000, retryDelayMs: 4000 });
      await until(async () => (await raw.zcard(names.mutexQueue(id))) === 1, 10_000, 'the peer to queue');
      const waiting = survivor.acquire(id, survivorOptions);
      await until(async () => (await raw.zcard(names.mutexQueue(id))) === 2, 5000, 'the survivor to queue');
      return { peer, holder, survivor, held, waiting };
    }

    it('skips a waiter whose process crashed: the next live waiter gets the mutex at once', async () => {
      const { peer, survivor, held, waiting } = await doomedQueue('crash', 10_000, SLOW_RETRY);
      await peer.kill();
      const releasedAt = Date.now();
      await held.release();
      const lock = await waiting;
      expect(Date.now() - releasedAt, 'not blocked by the dead waiter until its timeout').to.be.below(1000);
      expect((await survivor.inspect('crash')).takenBy).to.equal('survivor');
      await lock.release();
    });

    it('a waiter handed the mutex whose process then crashed blocks the others only until its timeout', async () => {
      const { peer, holder, survivor, held, waiting } = await doomedQueue('frozen', 1500, { retryDelayMs: 300, retryJitterMs: 0, waitMs: 20_000 });
      // frozen: its connection is open and its place live, so the hand-over goes to it; it dies before reading the notice
      peer.child.kill('SIGSTOP');
      await held.release();
      const handed = await holder.inspect('frozen');
      expect(handed.takenBy, 'handed to the frozen waiter').to.equal('doomed');
      await peer.kill();
      const killedAt = Date.now();
      const lock = await waiting;
      const waited = Date.now() - killedAt;
      expect(waited, 'not before the dead holder\'s timeout').to.be.at.least(handed.expiresInMs === null ? 0 : handed.expiresInMs - 200);
      expect(waited, 'found by the survivor\'s own attempt right after the timeout').to.be.below(1500 + 300 + 1500);
      expect(lock.fence).to.be.greaterThan(handed.fence as number);
      expect((await survivor.inspect('frozen')).takenBy).to.equal('survivor');
      await lock.release();
    });

    it('ignores garbage and forged notices on a wake channel, and the waiter still gets the mutex by its hand-over', async () => {
      const holder = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'holder' });
      const waiter = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'waiter' });
      closers.push(() => holder.close(), () => waiter.close());
      const held = await holder.acquire('forged');
      const waiting = waiter.acquire('forged', { ...SLOW_RETRY, timeoutMs: 5000 });
      await until(async () => (await raw.zcard(names.mutexQueue('forged'))) === 1, 5000, 'the waiter to queue');
      const [entry] = await raw.zrange(names.mutexQueue('forged'), '0', '0');
      const [token] = entry.split('|');
      // one shard channel per mutex (in the lock's slot), on one server as on a cluster
      const channel = names.mutexWake(token.slice(0, 12), 'forged');
      let settled = false;
      void waiting.then(() => (settled = true), () => (settled = true));
      const sent: string[] = [];
      for (const message of ['', '|', 'x', 'forged|', `forged|${token}`, `forged|${token}|1|2|5000|waiter|`, `forged|${token}|NaN|1|5000|waiter`, `forged|${token}|7|1|9999|waiter`, `forged|${token}|7|1|5000|someone-else`, `../..|${token}|7|1|5000|waiter`, `forged-other|${token}|7|1|5000|waiter`, `forged|other-token|7|1|5000|waiter`]) {
        sent.push(message);
        expect(await (raw as Cluster).spublish(channel, message), 'the waiter listens on the channel').to.equal(1);
      }
      await raw.get(names.mutex('forged')); // on the lock's master: the notices above were delivered before this reply
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled, 'no forged notice was taken for the lock').to.equal(false);
      await held.release();
      const lock = await waiting;
      expect((await waiter.inspect('forged')).fence).to.equal(lock.fence);
      expect(await lock.release()).to.equal(true);
    });

    it('drops queue members and waiters values not written by the protocol: the release and attempts answer as usual, and the live waiter behind them gets the mutex by its hand-over', async () => {
      const holder = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'holder' });
      const waiter = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'waiter' });
      closers.push(() => holder.close(), () => waiter.close());
      const queue = names.mutexQueue('garbled');
      const waiters = names.mutexWaiters('garbled');
      const held = await holder.acquire('garbled');
      const waiting = waiter.acquire('garbled', { ...SLOW_RETRY, timeoutMs: 5000 });
      await until(async () => (await raw.zcard(queue)) === 1, 5000, 'the waiter to queue');
      const [entry] = await raw.zrange(queue, '0', '0');
      // the real waiter's live wake channel: garbage that names it passes the liveness check and reaches the parsing
      const live = `${Date.now() + 60_000}|${((await raw.hget(waiters, entry)) as string).split('|').slice(1).join('|')}`;
      const garbage: Array<[string, string]> = [
        ['no-bar-at-all', live],
        ['tok|notanumber|node', live],
        ['tok|0|node', live],
        ['tok|99999999999999999999|node', live],
        ['tok|1.5|node', live],
        ['tok|1000|node', 'no-bar'],
        ['tok2|1000|node', `NaN|${live.split('|')[1]}`],
      ];
      const plant = async () => {
        // ahead of every real waiter: their scores are Redis's clock in microseconds
        for (const [i, [member, info]] of garbage.entries()) {
          await raw.zadd(queue, i + 1, member);
          await raw.hset(waiters, member, info);
        }
      };
      await plant();
      const releasedAt = Date.now();
      expect(await held.release(), 'the release answers as usual').to.equal(true);
      const lock = await waiting;
      expect(Date.now() - releasedAt, 'handed over past the garbage, not found by an attempt').to.be.below(1000);
      expect(await raw.zcard(queue), 'the garbage was dropped').to.equal(0);
      expect(await lock.release()).to.equal(true);
      // an attempt that finds the lock free and the queue full of garbage takes it with a fresh fence
      await plant();
      const taken = await holder.tryAcquire('garbled');
      expect(taken?.fence).to.be.greaterThan(lock.fence as number);
      expect(await raw.zcard(queue)).to.equal(0);
      expect(await taken?.release()).to.equal(true);
    });

    it('a waiter whose wake subscription is cut while it waits still gets the mutex after the release, within its retryDelayMs + retryJitterMs (1 s here) plus 500 ms', async () => {
      const holder = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'holder' });
      const waiter = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'waiter' });
      closers.push(() => holder.close(), () => waiter.close());
      for (let round = 0; round < 3; round++) {
        const held = await holder.acquire('cut-wake');
        const waiting = waiter.acquire('cut-wake', { retryDelayMs: 1000, retryJitterMs: 0, waitMs: 20_000, timeoutMs: 5000 });
        await until(async () => (await raw.zcard(names.mutexQueue('cut-wake'))) === 1, 5000, 'the waiter to queue');
        const cut = await cutWakeSubscription(waiter);
        expect(cut, 'a wake connection was cut').to.be.greaterThan(0);
        // round 0 releases at once (the subscription is still gone: the hand-over skips the waiter, its next attempt
        // takes the free mutex), later rounds once the connection may be back (the hand-over reaches it)
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 300 * round));
        const releasedAt = Date.now();
        expect(await held.release()).to.equal(true);
        const lock = await waiting;
        expect(Date.now() - releasedAt, `round ${round}: within retryDelayMs + 500 ms`).to.be.below(1500);
        expect((await waiter.inspect('cut-wake')).takenBy).to.equal('waiter');
        expect(await lock.release()).to.equal(true);
      }
    });

    it('a hand-over whose notice was lost is found by the waiter\'s next attempt', async () => {
      const holder = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'holder' });
      const waiter = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'waiter' });
      closers.push(() => holder.close(), () => waiter.close());
      const held = await holder.acquire('lost-notice');
      const waiting = waiter.acquire('lost-notice', { retryDelayMs: 300, retryJitterMs: 0, waitMs: 10_000, timeoutMs: 5000 });
      await until(async () => (await raw.zcard(names.mutexQueue('lost-notice'))) === 1, 5000, 'the waiter to queue');
      // hand over by hand, as the release script does, but publish nothing
      const [entry] = await raw.zrange(names.mutexQueue('lost-notice'), '0', '0');
      const [token, timeout, nodeId] = entry.split('|');
      const fence = await raw.incr(names.mutexFence('lost-notice'));
      await raw.multi().del(names.mutex('lost-notice')).set(names.mutex('lost-notice'), `${token}|${fence}|${Date.now()}|${timeout}|${nodeId}`, 'PX', Number(timeout)).zrem(names.mutexQueue('lost-notice'), entry).hdel(names.mutexWaiters('lost-notice'), entry).exec();
      const lock = await waiting;
      expect(lock.fence).to.equal(fence);
      expect(held.held, 'the old lock is not known to be lost yet: it was taken from under it').to.equal(true);
      expect(await lock.release()).to.equal(true);
    });
  });
});

/**
 * Destroys the sockets of a RedisMutex's wake subscriber (on a cluster, those
 * of every shard subscriber), as a network cut would; resolves with how many.
 */
async function cutWakeSubscription(mutex: RedisMutex): Promise<number> {
  const store = (mutex as unknown as { connection: { store: { subscriber?: Promise<RedisCommands> } } }).connection.store;
  const subscriber = await store.subscriber;
  if (subscriber === undefined) return 0;
  const group = (subscriber as unknown as { shardedSubscribers?: { shardedSubscribers: Map<string, { getInstance(): { stream?: { destroy(): void } } | null }> } }).shardedSubscribers;
  const sockets = group ? [...group.shardedSubscribers.values()].map((s) => s.getInstance()?.stream) : [(subscriber as unknown as { stream?: { destroy(): void } }).stream];
  let cut = 0;
  for (const socket of sockets) {
    if (socket === undefined) continue;
    socket.destroy();
    cut += 1;
  }
  return cut;
}
