/**
 * RedisMutex when Redis is unreachable: every call fails with
 * RedisUnavailableError, never a guessed "taken" or "free"; and a lock taken
 * by a reply that came after the caller was told so is given back.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';
import { expect } from 'chai';
import Redis from 'ioredis';
import { ConnectionError } from '../../src/errors/ConnectionError';
import { RedisUnavailableError } from '../../src/errors/RedisUnavailableError';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisClient } from '../../src/client/RedisClient';
import { Names } from '../../vars/names';
import { startRedis, type TestRedis } from '../support/redis-server';
import { rejection } from '../support/async';


/** A loopback port where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

describe('RedisMutex when Redis is unreachable', function () {
  this.timeout(20_000);

  it('fails every call fast when nothing listens: the first (it connects; nothing sent) with the ConnectionError of a client, the others with RedisUnavailableError', async () => {
    const mutex = new RedisMutex({ redis: `redis://127.0.0.1:${await closedPort()}`, commandTimeoutMs: 1000 });
    try {
      const calls = [() => mutex.P('job', 'n', 1000), () => mutex.tryAcquire('job'), () => mutex.acquire('job'), () => mutex.inspect('job'), () => mutex.list(), () => mutex.withMutex('job', () => 1)];
      for (const [i, call] of calls.entries()) {
        const started = Date.now();
        const error = await rejection(call());
        if (i === 0) {
          expect(error).to.be.instanceOf(ConnectionError);
          expect(error.message).to.match(/^could not connect to Redis at 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
        } else {
          expect(error).to.be.instanceOf(RedisUnavailableError);
          expect(error.message).to.match(/Redis is unavailable/);
        }
        expect(Date.now() - started).to.be.below(1500);
      }
    } finally {
      await mutex.close();
    }
  });

  describe('with a server that goes away', () => {
    let redis: TestRedis;
    let names: Names;

    before(async () => {
      redis = await startRedis({ private: true });
      names = new Names(redis.namespace);
    });

    after(async () => {
      await redis.stop();
    });

    it('answers neither taken nor free while the server is down, and works again once it is back', async () => {
      const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace, commandTimeoutMs: 1000 });
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
      admin.on('error', () => undefined);
      try {
        expect(await mutex.P('outage', 'n', 60_000)).to.equal(true);
        await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined); // the server exits; its connections drop
        // (V last: once V has been tried, this RedisMutex no longer counts the lock as its own.)
        for (const call of [() => mutex.P('other', 'n', 1000), () => mutex.inspect('outage'), () => mutex.extend('outage', 1000), () => mutex.V('outage')]) {
          const started = Date.now();
          const error = await rejection(call());
          expect(error, 'an answer without Redis').to.be.instanceOf(RedisUnavailableError);
          expect(Date.now() - started).to.be.below(1500);
        }
        await (redis.restart as () => Promise<void>)();
        // The restarted server lost its data (no persistence): once reconnected, the mutex reads as free.
        await waitFor(async () => {
          try {
            return (await mutex.inspect('outage')).taken === false;
          } catch {
            return false; // still reconnecting
          }
        });
        expect(await mutex.P('outage', 'n', 1000)).to.equal(true);
      } finally {
        await mutex.close();
        admin.disconnect();
      }
    });

    it('fails a call Redis does not answer in time, and gives back the lock its late reply took', async () => {
      const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace, commandTimeoutMs: 300 });
      const admin = new Redis(redis.url);
      try {
        expect(await mutex.P('warm-up', 'n', 1000)).to.equal(true);
        await admin.call('CLIENT', 'PAUSE', '1200', 'WRITE'); // Redis holds every write for 1.2 s
        const started = Date.now();
        const error = await rejection(mutex.P('late', 'n', 60_000));
        expect(error).to.be.instanceOf(RedisUnavailableError);
        expect(error.message).to.match(/no reply within 300 ms/);
        expect(Date.now() - started).to.be.below(1000);
        // When the pause ends the SET NX runs and takes the mutex for nobody; RedisMutex deletes it again.
        await waitFor(async () => (await admin.exists(names.mutex('late'))) === 0 && Date.now() - started > 1200);
        expect(await mutex.P('late', 'n', 1000), 'free again long before its 60 s timeout').to.equal(true);
      } finally {
        await mutex.close();
        admin.disconnect();
      }
    });
  });
});

/** Polls `check` every 20 ms for up to 5 s (used only where no event announces the state). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('RedisMutex on a connection its owner closed after the mutex used it', function () {
  this.timeout(20_000);
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis.stop());

  for (const how of ['quit', 'disconnect'] as const) {
    it(`an ioredis Redis closed with ${how}(): P, V and tryAcquire reject with the ConnectionError "closed by its owner", nothing sent`, async () => {
      const lent = new Redis(redis.url);
      const mutex = new RedisMutex({ redis: lent, namespace: redis.namespace, commandTimeoutMs: 1000 });
      try {
        expect(await mutex.P(`owner-${how}`, 'n', 5000)).to.equal(true);
        if (how === 'quit') await lent.quit();
        else lent.disconnect();
        for (const call of [() => mutex.P('owner-other', 'n', 1000), () => mutex.V(`owner-${how}`), () => mutex.tryAcquire('owner-third')]) {
          const error = await rejection(call());
          expect(error).to.be.instanceOf(ConnectionError);
          expect(error.message).to.match(/closed by its owner/);
        }
      } finally {
        await mutex.close();
        lent.disconnect();
      }
    });
  }

  it('a RedisClient lent to it and closed: its calls reject with the ConnectionError "closed by its owner"', async () => {
    const client = new RedisClient({ service: 'owner', redis: redis.url, namespace: redis.namespace });
    await client.connect();
    const mutex = new RedisMutex({ redis: client, commandTimeoutMs: 1000 });
    try {
      expect(await mutex.P('owner-client', 'n', 5000)).to.equal(true);
      await client.close();
      for (const call of [() => mutex.P('owner-client-2', 'n', 1000), () => mutex.V('owner-client'), () => mutex.tryAcquire('owner-client-3')]) {
        const error = await rejection(call());
        expect(error).to.be.instanceOf(ConnectionError);
        expect(error.message).to.match(/RedisClient passed in was closed by its owner/);
      }
    } finally {
      await mutex.close();
    }
  });
});
