/**
 * A property of the hand-over, on the memory route (the same store logic as
 * the Redis scripts, and fast enough for many runs): whatever the waiters'
 * hold times and whenever some of them give up, no two hold the mutex at
 * once, the ones that get it get it in the order they arrived, every one
 * that did not give up gets it, and the queue is empty afterwards.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { RedisClient } from '../../src/client/RedisClient';
import { AcquireAbortedError } from '../../src/errors/AcquireAbortedError';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { MemoryBus } from '../../src/route/MemoryBus';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RedisMutex hand-over (property)', function () {
  this.timeout(60_000);

  it('keeps exclusion and arrival order, and leaves no waiter behind, under any hold times and aborts', async () => {
    const bus = new MemoryBus();
    const clients: RedisClient[] = [];
    const mutexes: RedisMutex[] = [];
    for (let i = 0; i < 6; i++) {
      const client = new RedisClient({ service: 'fair', route: 'memory', memoryBus: bus });
      await client.connect();
      clients.push(client);
      mutexes.push(new RedisMutex({ redis: client, nodeId: `node-${i}`, retryDelayMs: 5000, retryJitterMs: 0 }));
    }
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.record({ holdMs: fc.integer({ min: 0, max: 3 }), abortAfterMs: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined }) }), { minLength: 1, maxLength: 5 }),
          fc.integer({ min: 0, max: 4 }),
          async (waiters, firstHoldMs) => {
            const id = `fair-${run++}`;
            const order: number[] = [];
            let holders = 0;
            let overlapped = false;
            const first = await mutexes[0].acquire(id, { timeoutMs: 5000 });
            const outcomes = waiters.map((spec, index) => {
              const signal = spec.abortAfterMs === undefined ? undefined : AbortSignal.timeout(spec.abortAfterMs);
              return mutexes[index + 1].acquire(id, { timeoutMs: 5000, waitMs: 10_000, signal }).then(
                async (lock) => {
                  holders += 1;
                  if (holders > 1) overlapped = true;
                  order.push(index);
                  await sleep(spec.holdMs);
                  holders -= 1;
                  expect(await lock.release()).to.equal(true);
                  return 'held' as const;
                },
                (error: unknown) => {
                  if (!(error instanceof AcquireAbortedError)) throw error;
                  return 'aborted' as const;
                },
              );
            });
            await sleep(firstHoldMs);
            await first.release();
            const results = await Promise.all(outcomes);
            expect(overlapped, 'two holders at once').to.equal(false);
            expect(order, 'served in arrival order').to.deep.equal([...order].sort((a, b) => a - b));
            results.forEach((outcome, index) => {
              if (waiters[index].abortAfterMs === undefined) expect(outcome, `waiter ${index} never gave up`).to.equal('held');
            });
            expect((await mutexes[0].inspect(id)).taken, 'free at the end').to.equal(false);
            // tryAcquire hands a free mutex to a live queued waiter first: it gets it only if nobody is left queued
            const newcomer = await mutexes[0].tryAcquire(id, { timeoutMs: 1000 });
            expect(newcomer, 'nobody left queued in front of a newcomer').to.not.equal(null);
            await newcomer?.release();
          },
        ),
        { numRuns: 40 },
      );
    } finally {
      await Promise.all(mutexes.map((mutex) => mutex.close()));
      await Promise.all(clients.map((client) => client.close()));
    }
  });
});
