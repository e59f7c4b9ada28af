/**
 * RedisMutex on the memory route: the instances of one process lock through
 * their shared bus with the records, expiry, fencing and release rules they
 * have on Redis.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { AcquireTimeoutError, LockLostError } from '../../src/errors/index';
import type { LockLostError as LockLost } from '../../src/errors/LockLostError';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { MemoryBus } from '../../src/route/MemoryBus';
import { rejection, until } from '../support/async';

describe('RedisMutex on the memory route', function () {
  this.timeout(10_000);
  let bus: MemoryBus;
  let clients: RedisClient[];
  let mutexes: RedisMutex[];

  const instance = async (nodeId: string): Promise<RedisMutex> => {
    const client = new RedisClient({ service: 'schema', route: 'memory', memoryBus: bus });
    await client.connect();
    clients.push(client);
    const mutex = new RedisMutex({ redis: client, nodeId });
    mutexes.push(mutex);
    return mutex;
  };

  beforeEach(() => {
    bus = new MemoryBus();
    clients = [];
    mutexes = [];
  });
  afterEach(async () => {
    await Promise.all(mutexes.map((m) => m.close()));
    await Promise.all(clients.map((c) => c.close()));
  });

  it('P is exclusive across instances; V by a non-owner changes nothing; the seed record is readable', async () => {
    const [a, b] = [await instance('node-a'), await instance('node-b')];
    expect(await a.P('init', 'node-a', 5000)).to.equal(true);
    expect(await b.P('init', 'node-b', 5000)).to.equal(false);
    expect(await b.V('init')).to.equal(false);
    const record = await b.inspect('init');
    expect(record).to.include({ mutexId: 'init', taken: true, takenBy: 'node-a', timeout: 5000 });
    expect(record.expiresInMs).to.be.within(1, 5000);
    expect((await b.list()).map((r) => r.mutexId)).to.deep.equal(['init']);
    expect(await a.V('init')).to.equal(true);
    expect((await b.inspect('init')).taken).to.equal(false);
    expect(await b.P('init', 'node-b', 5000)).to.equal(true);
  });

  it('releases by itself after timeoutMs, tells the holder, and a late V leaves the new holder alone', async () => {
    const [a, b] = [await instance('node-a'), await instance('node-b')];
    const lost = new Promise<LockLost>((resolve) => a.once('lost', resolve));
    const takenAt = Date.now();
    expect(await a.P('short', 'node-a', 120)).to.equal(true);
    expect(await b.P('short', 'node-b', 5000)).to.equal(false);
    await until(async () => b.P('short', 'node-b', 5000), 2000, 'the lock to expire');
    expect(Date.now() - takenAt).to.be.at.least(115);
    expect(await lost).to.be.instanceOf(LockLostError);
    expect(await a.V('short')).to.equal(false);
    expect((await a.inspect('short')).takenBy).to.equal('node-b');
  });

  it('hands out strictly increasing fencing tokens across holders', async () => {
    const [a, b] = [await instance('node-a'), await instance('node-b')];
    const fences: number[] = [];
    for (let i = 0; i < 3; i++) {
      for (const mutex of [a, b]) {
        const lock = await mutex.acquire('fenced', { timeoutMs: 5000 });
        fences.push(lock.fence as number);
        await lock.release();
      }
    }
    expect(fences).to.deep.equal([...fences].sort((x, y) => x - y));
    expect(new Set(fences).size).to.equal(6);
  });

  it('waits for a held mutex, and gives up with AcquireTimeoutError when the wait runs out', async () => {
    const [a, b] = [await instance('node-a'), await instance('node-b')];
    const held = await a.acquire('busy', { timeoutMs: 5000 });
    expect(await rejection(b.acquire('busy', { waitMs: 100, retryDelayMs: 20 }))).to.be.instanceOf(AcquireTimeoutError);
    const waiting = b.acquire('busy', { waitMs: 3000, retryDelayMs: 20 });
    await held.release();
    const taken = await waiting;
    expect(taken.fence).to.be.greaterThan(held.fence as number);
    await taken.release();
  });

  it('withMutex returns what fn returns and releases in every case', async () => {
    const a = await instance('node-a');
    expect(await a.withMutex('job', async () => 42)).to.equal(42);
    expect((await a.inspect('job')).taken).to.equal(false);
    const failure = await rejection(
      a.withMutex('job', async () => {
        throw new Error('migration failed');
      }),
    );
    expect(failure.message).to.equal('migration failed');
    expect((await a.inspect('job')).taken).to.equal(false);
  });

  it('seeds/001: five instances start at once and the schema initialisation runs exactly once', async () => {
    const instances = await Promise.all(['n1', 'n2', 'n3', 'n4', 'n5'].map((node) => instance(node)));
    let initialisations = 0;
    let initialised = false;
    await Promise.all(
      instances.map((mutex) =>
        mutex.withMutex(
          'users-schema-init',
          async () => {
            if (initialised) return;
            initialisations += 1;
            await new Promise((resolve) => setTimeout(resolve, 30));
            initialised = true;
          },
          { waitMs: 5000, retryDelayMs: 10 },
        ),
      ),
    );
    expect(initialisations).to.equal(1);
  });

  it('keeps separate buses apart', async () => {
    const a = await instance('node-a');
    expect(await a.P('shared-name', 'node-a', 5000)).to.equal(true);
    const otherBus = new RedisClient({ service: 'schema', route: 'memory', memoryBus: new MemoryBus() });
    await otherBus.connect();
    clients.push(otherBus);
    const elsewhere = new RedisMutex({ redis: otherBus, nodeId: 'far' });
    mutexes.push(elsewhere);
    expect(await elsewhere.P('shared-name', 'far', 5000)).to.equal(true);
  });
});
