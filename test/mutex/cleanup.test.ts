/**
 * RedisMutex leaves nothing behind and stays quiet about what is expected, on
 * both routes: a lost lock is forgotten and the sweep stops once nothing is
 * held or in flight; a lease that simply ran out is logged at debug, a lock
 * lost while it was being refreshed at warn; and on the memory route a
 * waiting acquire keeps its process alive until it gets the lock, as the
 * socket does on Redis.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { MemoryBus } from '../../src/route/MemoryBus';
import { Names } from '../../vars/names';
import { startRedis, type TestRedis } from '../support/redis-server';
import { nextLoss } from './nextLoss';

/** Log lines written by a pino logger at level debug. */
function capturedLogger(): { logger: pino.Logger; lines: Array<{ level: number; msg: string; mutexId?: string }> } {
  const lines: Array<{ level: number; msg: string; mutexId?: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/**
 * Records the timers created while `fn` runs (the mutex's deadline and lease
 * timers are timeouts), and which of them were cleared or have fired.
 */
async function watchTimers<T>(fn: (pending: () => NodeJS.Timeout[], created: NodeJS.Timeout[]) => Promise<T>): Promise<T> {
  const created: NodeJS.Timeout[] = [];
  const over = new Set<unknown>();
  const originalSet = globalThis.setTimeout;
  const originalClear = globalThis.clearTimeout;
  globalThis.setTimeout = ((handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer: NodeJS.Timeout = originalSet((...passed: unknown[]) => {
      over.add(timer);
      handler(...passed);
    }, ms, ...args);
    created.push(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer?: NodeJS.Timeout | string | number) => {
    over.add(timer);
    originalClear(timer);
  }) as typeof clearTimeout;
  try {
    return await fn(() => created.filter((timer) => !over.has(timer)), created);
  } finally {
    globalThis.setTimeout = originalSet;
    globalThis.clearTimeout = originalClear;
  }
}

describe('RedisMutex cleans up after itself', function () {
  this.timeout(20_000);
  let redis: TestRedis;
  let raw: Redis;
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  after(async () => {
    raw.disconnect();
    await redis.stop();
  });

  const routes: Array<{ route: string; make: (logger?: pino.Logger, commandTimeoutMs?: number) => Promise<RedisMutex> }> = [
    {
      route: 'redis',
      make: async (logger, commandTimeoutMs) => {
        const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace, logger, commandTimeoutMs });
        closers.push(() => mutex.close());
        return mutex;
      },
    },
    {
      route: 'memory',
      make: async (logger, commandTimeoutMs) => {
        const client = new RedisClient({ service: 'cleanup', route: 'memory', memoryBus: new MemoryBus() });
        await client.connect();
        const mutex = new RedisMutex({ redis: client, logger, commandTimeoutMs });
        closers.push(() => client.close());
        closers.push(() => mutex.close());
        return mutex;
      },
    },
  ];

  for (const { route, make } of routes) {
    describe(`on the ${route} route`, () => {
      it('forgets a lost lock, and its timers stop once nothing is held or in flight', async () => {
        const mutex = await make(undefined, 200); // before watching: a client's own timers (heartbeats) are not the mutex's
        await watchTimers(async (pending, created) => {
          const ids = ['gone-1', 'gone-2', 'gone-3'];
          const losses = ids.map((id) => nextLoss(mutex, id));
          for (const id of ids) expect(await mutex.P(id, 'node', 60)).to.equal(true);
          await Promise.all(losses);
          for (const id of ids) expect(mutex.heldLock(id), `${id} is forgotten`).to.equal(undefined);
          expect(created.length, 'the losses were found by a timer').to.be.greaterThan(0);
          // the command deadline timer fires at most once more, by the last command's deadline (commandTimeoutMs 200)
          await new Promise((done) => setTimeout(done, 300));
          expect(pending(), 'no timer of the mutex is still armed').to.deep.equal([]);
        });
      });

      it('arms no timer per call and wakes no timer while P/V cycles run (one deadline timer, one lease timer)', async () => {
        const mutex = await make();
        expect(await mutex.P('warm', 'node', 10_000)).to.equal(true); // connects outside the watch
        expect(await mutex.V('warm')).to.equal(true);
        const intervals: unknown[] = [];
        const originalInterval = globalThis.setInterval;
        globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
          const timer = originalInterval(...args);
          intervals.push(timer);
          return timer;
        }) as typeof setInterval;
        try {
          await watchTimers(async (pending, created) => {
            let cycles = 0;
            const until = Date.now() + 300;
            while (Date.now() < until) {
              expect(await mutex.P('busy', 'node', 10_000)).to.equal(true);
              expect(await mutex.V('busy')).to.equal(true);
              cycles++;
            }
            expect(cycles).to.be.greaterThan(10);
            expect(intervals, 'no interval').to.deep.equal([]);
            expect(created.length, `timers armed over ${cycles} cycles`).to.be.at.most(2);
            expect(created.length - pending().length, 'none of them fired').to.equal(0);
          });
        } finally {
          globalThis.setInterval = originalInterval;
        }
      });

      it('logs a lease that ran out at debug, and a lock lost while it was refreshed at warn', async () => {
        const { logger, lines } = capturedLogger();
        const mutex = await make(logger);
        const expired = nextLoss(mutex, 'expires');
        expect(await mutex.P('expires', 'node', 50)).to.equal(true);
        await expired;
        const aboutExpiry = lines.filter((line) => line.mutexId === 'expires');
        expect(aboutExpiry.map((line) => line.level), 'the expiry is told at debug').to.deep.equal([20]);

        if (route !== 'redis') return; // deleting a lock behind the holder's back needs Redis
        const refreshed = await mutex.acquire('refreshed', { timeoutMs: 300, autoRefresh: true });
        const taken = nextLoss(mutex, 'refreshed');
        await raw.del(new Names(redis.namespace).mutex('refreshed'));
        await taken;
        expect(refreshed.lost).to.equal(true);
        const aboutLoss = lines.filter((line) => line.mutexId === 'refreshed');
        expect(aboutLoss.map((line) => line.level), 'an unexpected loss is told at warn').to.deep.equal([40]);
      });
    });
  }

  it('keeps the wake channels of the 64 most recently idle mutexes subscribed, and no more (docs/mutex.md)', async () => {
    const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace });
    closers.push(() => mutex.close());
    const names = new Names(redis.namespace);
    const ids = Array.from({ length: 70 }, (_, i) => `idle-${i}`);
    for (const id of ids) await (await mutex.acquire(id, { timeoutMs: 10_000 })).release();
    const subscribed = new Set((await raw.call('PUBSUB', 'SHARDCHANNELS', names.mutexWake('*', '*').replace('{mutex:*}', '{mutex:idle-*}'))) as string[]);
    const channelOf = (id: string): string => [...subscribed].find((channel) => channel.includes(`{mutex:${id}}`)) ?? '';
    expect(subscribed.size, [...subscribed].join(' ')).to.equal(64);
    for (const id of ids.slice(6)) expect(channelOf(id), `${id} (among the 64 most recently idle) stays subscribed`).to.not.equal('');
    for (const id of ids.slice(0, 6)) expect(channelOf(id), `${id} (idle longest) was unsubscribed`).to.equal('');
    // taken again, a recently idle one needs no new subscription
    await (await mutex.acquire('idle-69', { timeoutMs: 10_000 })).release();
    expect(((await raw.call('PUBSUB', 'SHARDCHANNELS', names.mutexWake('*', 'idle-69'))) as string[]).length).to.equal(1);
  });

  it('on the memory route, a process whose only work is a waiting acquire stays alive until it gets the lock', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(__dirname, 'peers/memory-waiter.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(output.trim().split('\n'), 'the waiter got the lock before the process ended').to.deep.equal(['waiting', 'acquired']);
    expect(code).to.equal(0);
  });
});
