/**
 * RedisMutex when Redis refuses instead of failing: a wrong password, an ACL
 * that leaves out a command or a key, a Cluster node spoken to as one server
 * (MOVED), a cluster with a slot nobody serves (CLUSTERDOWN). Each is the
 * typed error docs/mutex.md lists, the server's reply kept as `cause`, and
 * the lock state is what the page says it is.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { ConnectionError, PermissionError, RedisUnavailableError, TopologyError } from '../../src/errors/index';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { Names } from '../../vars/names';
import { rejection } from '../support/async';
import { startFakeServer } from '../support/fake-redis';
import { startRedis, type TestRedis } from '../support/redis-server';
import { startCluster } from '../support/redis-topologies';

const quiet = pino({ level: 'silent' });

describe('RedisMutex: what each refusal by Redis rejects with, and the lock state after it', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let admin: Redis;
  let port: number;
  let names: Names;
  const mutexes: RedisMutex[] = [];
  /** A mutex logged in as `user` (password `pw`), closed after the test. */
  const as = (user: string, password = 'pw') => {
    const mutex = new RedisMutex({ redis: { port, username: user, password }, namespace: redis.namespace, logger: quiet, commandTimeoutMs: 3000 });
    mutexes.push(mutex);
    return mutex;
  };
  /** The lock's value in Redis, read by the admin: null when free. */
  const lockIn = (mutexId: string) => admin.get(names.mutex(mutexId));

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
    port = Number(new URL(redis.url).port);
    names = new Names(redis.namespace);
    const own = `~${redis.namespace}:*`;
    await admin.call('ACL', 'SETUSER', 'keeper', 'on', '>pw', own, '&*', '+@all');
    // allowed to connect and read, not to run the mutex scripts
    await admin.call('ACL', 'SETUSER', 'noscript', 'on', '>pw', own, '&*', '+@all', '-evalsha', '-eval');
    // may run scripts, but a script may not SET: refused inside the script
    await admin.call('ACL', 'SETUSER', 'noset', 'on', '>pw', own, '&*', '+@all', '-set');
    // every command but SPUBLISH: a release that hands over is refused at the notice
    await admin.call('ACL', 'SETUSER', 'nonotice', 'on', '>pw', own, '&*', '+@all', '-spublish');
    // every command, but only on keys of another namespace
    await admin.call('ACL', 'SETUSER', 'elsewhere', 'on', '>pw', '~elsewhere:*', '&*', '+@all');
  });
  afterEach(async () => {
    for (const mutex of mutexes.splice(0)) await mutex.close();
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  it('WRONGPASS: ConnectionError, the reply as cause; nothing was sent', async () => {
    const error = await rejection(as('keeper', 'wrong').P('wrongpass', 'n', 10_000));
    expect(error).to.be.instanceOf(ConnectionError);
    expect((error.cause as Error).message).to.match(/^WRONGPASS/);
    expect(await lockIn('wrongpass')).to.equal(null);
  });

  it('WRONGPASS at the first connect, then the password fixed: each call before the fix is the same ConnectionError, and the next call after it connects and succeeds', async () => {
    await admin.call('ACL', 'SETUSER', 'fixed', 'on', '>old', `~${redis.namespace}:*`, '&*', '+@all');
    const mutex = as('fixed', 'new');
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await rejection(mutex.P('fixed', 'n', 10_000));
      expect(error, `attempt ${attempt}`).to.be.instanceOf(ConnectionError);
      expect((error.cause as Error).message).to.match(/^WRONGPASS/);
    }
    await admin.call('ACL', 'SETUSER', 'fixed', 'resetpass', '>new');
    expect(await mutex.P('fixed', 'n', 10_000)).to.equal(true);
    expect(await lockIn('fixed')).to.not.equal(null);
    expect(await mutex.V('fixed')).to.equal(true);
  });

  it('NOPERM on the command (no EVALSHA): PermissionError naming the call; the lock is neither taken nor released', async () => {
    const mutex = as('noscript');
    for (const [call, work] of [
      ['tryAcquire "noscript"', () => mutex.tryAcquire('noscript')],
      ['acquire "noscript"', () => mutex.acquire('noscript', { waitMs: 200 })],
      ['inspect "noscript"', () => mutex.inspect('noscript')],
    ] as const) {
      const error = await rejection(work());
      expect(error, call).to.be.instanceOf(PermissionError);
      expect((error as PermissionError).operation).to.equal(call);
      expect((error.cause as Error).message).to.match(/^NOPERM .*evalsha/);
    }
    expect(await lockIn('noscript')).to.equal(null);
    // a lock P took (a plain SET, allowed) cannot be given back by V (a script): it stays until its timeout
    expect(await mutex.P('noscript-held', 'n', 10_000)).to.equal(true);
    const error = await rejection(mutex.V('noscript-held'));
    expect(error).to.be.instanceOf(PermissionError);
    expect(await lockIn('noscript-held')).to.match(/\|n$/);
    expect(await admin.pttl(names.mutex('noscript-held'))).to.be.within(1, 10_000);
  });

  it('NOPERM on the keys: PermissionError; nothing written', async () => {
    const mutex = as('elsewhere');
    for (const work of [() => mutex.P('keys', 'n', 10_000), () => mutex.tryAcquire('keys')]) {
      const error = await rejection(work());
      expect(error).to.be.instanceOf(PermissionError);
      expect((error.cause as Error).message).to.match(/^NOPERM .*keys/);
    }
    expect(await lockIn('keys')).to.equal(null);
  });

  it("refused inside a script (EVALSHA allowed, SET not): PermissionError; the lock is not taken", async () => {
    const error = await rejection(as('noset').tryAcquire('inscript'));
    expect(error).to.be.instanceOf(PermissionError);
    expect((error.cause as Error).message).to.match(/can't run this command/);
    expect(await lockIn('inscript')).to.equal(null);
  });

  it('refused inside the hand-over (SPUBLISH not allowed): the release rejects with PermissionError and released nothing; the waiter is not handed the lock', async () => {
    const holder = as('nonotice');
    const waiter = as('keeper');
    const held = await holder.acquire('nonotice', { timeoutMs: 10_000 });
    const waiting = waiter.acquire('nonotice', { retryDelayMs: 60_000, retryJitterMs: 0, waitMs: 5000, timeoutMs: 10_000 });
    waiting.catch(() => undefined);
    const queue = names.mutexQueue('nonotice');
    for (let tries = 0; (await admin.zcard(queue)) !== 1 && tries < 500; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    const error = await rejection(held.release());
    expect(error).to.be.instanceOf(PermissionError);
    expect(await lockIn('nonotice'), 'the holder\'s lock stays, as written').to.equal(held.value);
    expect(await admin.pttl(names.mutex('nonotice'))).to.be.above(5000);
  });

  it('the password changed while connected: calls reject with RedisUnavailableError (not applied), the WRONGPASS of the reconnect as cause', async () => {
    await admin.call('ACL', 'SETUSER', 'rotated', 'on', '>pw', `~${redis.namespace}:*`, '&*', '+@all');
    const mutex = as('rotated');
    expect(await mutex.P('rotated', 'n', 10_000)).to.equal(true);
    await admin.call('ACL', 'SETUSER', 'rotated', 'resetpass', '>new');
    await admin.call('CLIENT', 'KILL', 'USER', 'rotated');
    // the reconnect is refused: wait for ioredis to report it rather than guessing a delay
    await new Promise<void>((resolve) => {
      const poll = () => (mutex['connection'].lastError?.message.startsWith('WRONGPASS') ? resolve() : setTimeout(poll, 10));
      poll();
    });
    const error = await rejection(mutex.V('rotated'));
    expect(error).to.be.instanceOf(RedisUnavailableError);
    expect((error as RedisUnavailableError).applied).to.equal(false);
    expect((error.cause as Error).message).to.match(/^WRONGPASS/);
    // V was not applied: Redis still holds the lock, which expires at its timeout
    expect(await lockIn('rotated')).to.match(/\|n$/);
  });

  it('MOVED (a Cluster node spoken to as one server): TopologyError, the reply as cause', async () => {
    const moved = await startFakeServer('-MOVED 3999 127.0.0.1:7001\r\n');
    try {
      const mutex = new RedisMutex({ redis: moved.url, logger: quiet, commandTimeoutMs: 3000 });
      mutexes.push(mutex);
      // a connection made here, and one lent (connected by its owner)
      const lent = new Redis(moved.url);
      lent.on('error', () => undefined); // its handshake gets MOVED too: the owner's to hear
      const lentMutex = new RedisMutex({ redis: lent, logger: quiet, commandTimeoutMs: 3000 });
      mutexes.push(lentMutex);
      try {
        for (const work of [() => mutex.P('moved', 'n', 10_000), () => lentMutex.P('moved', 'n', 10_000), () => lentMutex.tryAcquire('moved')]) {
          const error = await rejection(work());
          expect(error).to.be.instanceOf(TopologyError);
          expect(error.message).to.match(/Cluster node/);
          expect((error.cause as Error).message).to.match(/^MOVED/);
        }
      } finally {
        lent.disconnect();
      }
    } finally {
      await moved.close();
    }
  });

  it('CLUSTERDOWN (a slot nobody serves): RedisUnavailableError with applied false, never "outcome unknown"; the held lock stays', async function () {
    this.timeout(60_000);
    const cluster = await startCluster(1, 0);
    const node = new Redis(cluster.nodes[0].port);
    try {
      const mutex = new RedisMutex({ redis: cluster.url, logger: quiet, commandTimeoutMs: 10_000 });
      mutexes.push(mutex);
      expect(await mutex.P('down-held', 'n', 60_000)).to.equal(true);
      // one slot unassigned: with full coverage required, the whole cluster refuses commands
      await node.call('CLUSTER', 'DELSLOTS', 100);
      for (const [call, work] of [
        ['P', () => mutex.P('down', 'n', 1000)],
        ['V', () => mutex.V('down-held')],
      ] as const) {
        const error = await rejection(work());
        expect(error, call).to.be.instanceOf(RedisUnavailableError);
        expect((error as RedisUnavailableError).applied, call).to.equal(false);
        expect(error.message, call).to.match(/CLUSTERDOWN/).and.to.match(/nothing was applied/).and.not.to.match(/outcome is unknown/);
      }
      await node.call('CLUSTER', 'ADDSLOTS', 100);
      expect(await node.get(new Names('').mutex('down-held'))).to.match(/\|n$/);
    } finally {
      node.disconnect();
      await cluster.stop();
    }
  });
});
