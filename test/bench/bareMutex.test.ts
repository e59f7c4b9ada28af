/**
 * The bare mutex systems of `mutex-contended` (test/bench/peers/bareMutex.ts),
 * against a real Redis: what docs/benchmarks.md says they are. Each waiter
 * here retries only every 60 s, so a waiter that gets the lock while its
 * holder's release is the only event got it by the hand-over the docs name
 * (a wake notice; an LPUSH to the waiter's list), not by a retry.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { useRedis } from '../support/redis-server';
import { bareBlocking, bareScripts, BLOCKING_ACQUIRE, BLOCKING_RELEASE, type Enter } from './peers/bareMutex';
import { acquireScript, releaseScript } from '../../src/mutex/scripts';
import { Names } from '../../vars/names';

const RETRY_MS = 60_000;

describe('bench: the bare mutex systems', function () {
  this.timeout(20_000);
  const redis = useRedis();
  const connections: Redis[] = [];
  const connect = () => {
    const connection = new Redis(redis().url);
    connections.push(connection);
    return connection;
  };
  afterEach(() => {
    for (const connection of connections.splice(0)) connection.disconnect();
  });

  /** A holder and two waiters that arrived in order; each release must hand the lock to the next, in arrival order. */
  async function handsOverInArrivalOrder(make: (mutexId: string) => Promise<Enter>, mutexId: string): Promise<void> {
    const [first, second, third] = [await make(mutexId), await make(mutexId), await make(mutexId)];
    const leaveFirst = await first();
    const order: string[] = [];
    const secondIn = second().then((leave) => (order.push('second'), leave));
    // the second is queued before the third arrives: its attempt is in Redis's queue
    const admin = connect();
    const queue = new Names(redis().namespace).mutexQueue(mutexId);
    while ((await admin.zcard(queue)) < 1) await new Promise((resolve) => setImmediate(resolve));
    const thirdIn = third().then((leave) => (order.push('third'), leave));
    while ((await admin.zcard(queue)) < 2) await new Promise((resolve) => setImmediate(resolve));
    await leaveFirst();
    const leaveSecond = await secondIn;
    expect(order).to.deep.equal(['second']);
    await leaveSecond();
    await (await thirdIn)();
    expect(order).to.deep.equal(['second', 'third']);
  }

  it('bare-scripts hands the lock over by intracom\'s wake notice, in arrival order', async () => {
    await handsOverInArrivalOrder((mutexId) => bareScripts(connect(), connect(), redis().namespace, { mutexId, retryMs: RETRY_MS }), 'bare-scripts-test');
  });

  it('bare-blocking hands the lock over by an LPUSH to the waiter\'s list, in arrival order', async () => {
    await handsOverInArrivalOrder((mutexId) => bareBlocking(connect(), connect(), connect(), redis().namespace, { mutexId, retryMs: RETRY_MS }), 'bare-blocking-test');
  });

  it('bare-blocking\'s scripts are intracom\'s with the hand-over edited, and Redis accepts them', async () => {
    expect(BLOCKING_ACQUIRE).to.not.equal(acquireScript.source);
    expect(BLOCKING_ACQUIRE).to.include("redis.call('LPUSH', list, value)").and.not.include('SPUBLISH');
    expect(BLOCKING_RELEASE).to.include("redis.call('LPUSH', list, value)").and.not.include('SPUBLISH');
    expect(releaseScript.source).to.include('SPUBLISH');
    const admin = connect();
    expect(await admin.script('LOAD', BLOCKING_ACQUIRE)).to.match(/^[0-9a-f]{40}$/);
    expect(await admin.script('LOAD', BLOCKING_RELEASE)).to.match(/^[0-9a-f]{40}$/);
  });
});
