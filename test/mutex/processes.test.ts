/**
 * RedisMutex across separate processes, against a real Redis: contention with
 * a non-atomic counter, a hand-over to a waiter in another process, a holder
 * killed with SIGKILL, V by a non-owner, and fencing tokens across holders.
 * On one server, a cluster and Sentinel, and with every process under a
 * service's generated least-privilege ACL user.
 */
import { expect } from 'chai';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { Names } from '../../vars/names';
import type { RedisCommands } from '../../src/route/connection';
import { spawnPeer, type Peer } from '../support/processes';
import { testTargets, type TestTarget } from '../support/redis-targets';
import { aclTarget } from '../support/acl';

interface Section {
  fence: number;
  read: number;
}

// the user declares the mutexes it takes; the contenders' counter sits among the keys of their mutex, which it may write
const underAcl = aclTarget('billing', () => ({ services: { billing: { mutexes: ['counter', 'job', 'shared', 'fenced', 'handed'] } } }));

for (const kind of [...testTargets(), underAcl]) describe(`RedisMutex across processes${kind.suffix}`, function () {
  this.timeout(40_000);
  let redis: TestTarget;
  let raw: RedisCommands;
  let counterKey: string;
  const peers: Peer[] = [];

  before(async function () {
    this.timeout(120_000);
    redis = await kind.start();
    raw = redis.open();
    counterKey = `${redis.namespace}:ic:{mutex:counter}:count`;
  });

  after(async () => {
    await Promise.all(peers.map((peer) => peer.kill()));
    raw.disconnect();
    await redis.stop();
  });

  function spawn(file: string, env: Record<string, string> = {}): Peer {
    const peer = spawnPeer(`test/mutex/peers/${file}`, { REDIS_URL: redis.url, NAMESPACE: redis.namespace, COUNTER_KEY: counterKey, ...env });
    peers.push(peer);
    return peer;
  }

  async function ask<T>(peer: Peer, request: Record<string, unknown>): Promise<T> {
    const reply = peer.next<{ type: string; op: string; result?: T; error?: string }>((m) => m.type === 'reply' && m.op === request.op);
    peer.send(request);
    const message = await reply;
    if (message.error) throw new Error(message.error);
    return message.result as T;
  }

  it('keeps 4 contending processes out of each other: a non-atomic counter ends equal to the number of critical sections', async () => {
    const durationMs = 8000;
    const contenders = [0, 1, 2, 3].map((i) => spawn('contender.ts', { PEER: `contender-${i}`, MODE: i % 2 === 0 ? 'withMutex' : 'acquire', DURATION_MS: String(durationMs) }));
    await Promise.all(contenders.map((peer) => peer.next((m: { type: string }) => m.type === 'ready', 30_000)));
    const results = contenders.map((peer) => peer.next<{ type: string; sections?: Section[]; message?: string }>((m) => m.type === 'done' || m.type === 'error', durationMs + 20_000));
    for (const peer of contenders) peer.send({ type: 'go' });
    const reports = await Promise.all(results);
    for (const report of reports) expect(report.type, report.message).to.equal('done');

    const perPeer = reports.map((r) => r.sections as Section[]);
    const all = perPeer.flat();
    const counter = Number(await raw.get(counterKey));
    expect(all.length).to.be.greaterThan(40);
    for (const sections of perPeer) expect(sections.length, 'every process got the mutex').to.be.greaterThan(0);
    expect(counter).to.equal(all.length);

    // Fencing tokens follow the order of the critical sections: sorted by fence,
    // the values read are 0, 1, 2, ... (each section saw the previous one's write).
    const byFence = [...all].sort((a, b) => a.fence - b.fence);
    expect(new Set(all.map((s) => s.fence)).size).to.equal(all.length);
    expect(byFence.map((s) => s.read)).to.deep.equal(byFence.map((_, i) => i));
  });

  it('hands the mutex to a waiter in another process as soon as it is released, with a greater fence', async () => {
    const waiter = spawn('holder.ts');
    await waiter.next((m: { type: string }) => m.type === 'ready', 30_000);
    const local = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'local' });
    try {
      const held = await local.acquire('handed', { timeoutMs: 10_000 });
      // the waiter's own attempts come every 4 s: anything faster is the hand-over
      const reply = waiter.next<{ type: string; op: string; result?: { fence: number }; error?: string }>((m) => m.type === 'reply' && m.op === 'acquire', 20_000);
      waiter.send({ op: 'acquire', id: 'handed', nodeId: 'remote', timeoutMs: 10_000, waitMs: 20_000, retryDelayMs: 4000 });
      const queue = new Names(redis.namespace).mutexQueue('handed');
      const deadline = Date.now() + 10_000;
      while ((await raw.zcard(queue)) !== 1) {
        if (Date.now() > deadline) throw new Error('the remote waiter never queued');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const releasedAt = Date.now();
      expect(await held.release()).to.equal(true);
      const answer = await reply;
      expect(answer.error).to.equal(undefined);
      expect(Date.now() - releasedAt, 'handed over, not found by a retry').to.be.below(1000);
      expect(answer.result?.fence).to.be.greaterThan(held.fence as number);
      expect(await local.inspect('handed')).to.include({ taken: true, takenBy: 'remote' });
    } finally {
      await local.close();
      await waiter.kill();
    }
  });

  it('lets another node take over from a SIGKILLed holder after its timeout, and not before', async () => {
    const timeoutMs = 1500;
    const holder = spawn('holder.ts');
    await holder.next((m: { type: string }) => m.type === 'ready', 30_000);
    const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace, nodeId: 'survivor' });
    try {
      const held = await ask<{ fence: number; takenAt: number }>(holder, { op: 'tryAcquire', id: 'job', nodeId: 'doomed', timeoutMs });
      expect(held).to.not.equal(null);
      await holder.kill();

      expect(await mutex.P('job', 'survivor', 5000), 'still held right after the kill').to.equal(false);
      const record = await mutex.inspect('job');
      expect(record).to.include({ taken: true, takenBy: 'doomed', timeout: timeoutMs, fence: held.fence });

      const lock = await mutex.acquire('job', { waitMs: 10_000, retryDelayMs: 5, retryJitterMs: 5 });
      const acquiredAt = Date.now();
      // Same host, same clock: the holder's takenAt was read before its SET reached Redis,
      // and acquiredAt after the takeover was answered, so the gap bounds the lock's life.
      const gap = acquiredAt - held.takenAt;
      expect(gap, 'took over no earlier than the timeout').to.be.at.least(timeoutMs);
      // soon: one retry (5-10 ms) after the expiry, plus what a loaded machine adds (2.6 s seen on a cluster at load average 28)
      expect(gap, 'took over soon after the timeout').to.be.below(timeoutMs + 2000);
      expect(lock.fence).to.be.greaterThan(held.fence);
      expect((await mutex.inspect('job')).takenBy).to.equal('survivor');
      expect(await lock.release()).to.equal(true);
    } finally {
      await mutex.close();
    }
  });

  it('leaves the lock held when a node that does not own it calls V, even with the same nodeId', async () => {
    const holder = spawn('holder.ts');
    await holder.next((m: { type: string }) => m.type === 'ready', 30_000);
    const other = new RedisMutex({ redis: redis.url, namespace: redis.namespace });
    try {
      expect(await ask<boolean>(holder, { op: 'P', id: 'shared', nodeId: 'owner', timeoutMs: 10_000 })).to.equal(true);
      expect(await other.V('shared')).to.equal(false);
      expect(await other.P('shared', 'owner', 10_000), 'same nodeId, different holder').to.equal(false);
      expect(await other.V('shared')).to.equal(false);
      expect(await other.tryAcquire('shared')).to.equal(null);
      expect(await other.inspect('shared')).to.include({ taken: true, takenBy: 'owner' });

      expect(await ask<boolean>(holder, { op: 'V', id: 'shared' })).to.equal(true);
      expect((await other.inspect('shared')).taken).to.equal(false);
    } finally {
      await other.close();
      await holder.kill();
    }
  });

  it('hands out strictly increasing fencing tokens across holders in different processes', async () => {
    const holder = spawn('holder.ts');
    await holder.next((m: { type: string }) => m.type === 'ready', 30_000);
    const local = new RedisMutex({ redis: redis.url, namespace: redis.namespace });
    try {
      const fences: number[] = [];
      for (let i = 0; i < 4; i++) {
        const remote = await ask<{ fence: number }>(holder, { op: 'tryAcquire', id: 'fenced', nodeId: 'remote', timeoutMs: 10_000 });
        fences.push(remote.fence);
        expect(await ask<boolean>(holder, { op: 'V', id: 'fenced' })).to.equal(true);
        const lock = (await local.tryAcquire('fenced')) as NonNullable<Awaited<ReturnType<RedisMutex['tryAcquire']>>>;
        fences.push(lock.fence as number);
        await lock.release();
      }
      for (let i = 1; i < fences.length; i++) expect(fences[i], `fence ${i}`).to.be.greaterThan(fences[i - 1]);
    } finally {
      await local.close();
      await holder.kill();
    }
  });
});
