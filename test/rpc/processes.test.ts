/**
 * RPC across separate processes, against a real Redis: every error class
 * from its real cause, load spread over three instances, an instance
 * SIGKILLed mid-call, and the caller's connection killed by the server.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { CancelledError } from '../../src/errors/CancelledError';
import { ConnectionLostError } from '../../src/errors/ConnectionLostError';
import { NoHandlerError } from '../../src/errors/NoHandlerError';
import { NoServiceError } from '../../src/errors/NoServiceError';
import { RemoteError } from '../../src/errors/RemoteError';
import { TimeoutError } from '../../src/errors/TimeoutError';
import type { RedisRoute } from '../../src/route/RedisRoute';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { spawnPeer, type Peer } from '../support/processes';
import { startRedis, type TestRedis } from '../support/redis-server';
import { PeerFunctions } from './peers/functions';
import { rejection } from '../support/async';

type Message = { ev: string; [field: string]: unknown };


describe('RedisRPCClient across processes', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let admin: Redis;
  let peers: Peer[] = [];
  let callers: RedisRPCClient[] = [];
  let namespace: string;
  let run = 0;

  const peer = async (): Promise<{ peer: Peer; instanceId: string }> => {
    const started = spawnPeer('test/rpc/peers/rpc-peer.ts', { TEST_REDIS_URL: redis.url, TEST_NAMESPACE: namespace, TEST_SERVICE: 'rpc-peer' });
    peers.push(started);
    const ready = await started.next<Message>((m) => m.ev === 'ready');
    return { peer: started, instanceId: ready.instanceId as string };
  };
  const caller = async (options: { timeoutMs?: number; probeIntervalMs?: number } = {}): Promise<RedisRPCClient> => {
    const created = new RedisRPCClient({ service: 'web', redis: redis.url, namespace, ...options });
    callers.push(created);
    await created.connect();
    return created;
  };

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });
  beforeEach(() => {
    namespace = `${redis.namespace}p${run++}`;
  });
  afterEach(async () => {
    await Promise.all(callers.map((c) => c.close()));
    await Promise.all(peers.map((p) => p.kill()));
    callers = [];
    peers = [];
  });

  it('3 instances, 1,000 calls: every call answered exactly once, every instance handled some', async () => {
    const instances = await Promise.all([peer(), peer(), peer()]);
    const rpc = await caller();
    const replies = await Promise.all(Array.from({ length: 1000 }, (_, i) => rpc.callService(PeerFunctions, 'whoami', i)));
    expect(replies.map((r) => r.i)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
    const byInstance = new Map<string, number>();
    for (const reply of replies) byInstance.set(reply.instanceId, (byInstance.get(reply.instanceId) ?? 0) + 1);
    expect([...byInstance.keys()].sort()).to.deep.equal(instances.map((i) => i.instanceId).sort());
    for (const count of byInstance.values()) expect(count).to.be.greaterThan(100);
    // and each instance counted exactly what it answered: no call was handled twice
    for (const { peer: p, instanceId } of instances) {
      const { handled } = await p.ask<Message>({ cmd: 'handled' }, 'handled');
      expect(handled).to.equal(byInstance.get(instanceId));
    }
    expect(rpc.stats().lateReplies).to.equal(0);
  });

  it('produces each error class from its real cause', async () => {
    const { peer: p } = await peer();
    const rpc = await caller({ timeoutMs: 5000 });

    let started = Date.now();
    const noHandler = await rejection(rpc.callService('rpc-peer', 'missing'));
    expect(noHandler).to.be.instanceOf(NoHandlerError);
    expect(Date.now() - started).to.be.below(1000);

    started = Date.now();
    expect(await rejection(rpc.callService('no-such-service', 'x'))).to.be.instanceOf(NoServiceError);
    expect(Date.now() - started).to.be.below(1000);

    const remote = (await rejection(rpc.callService(PeerFunctions, 'fail'))) as RemoteError;
    expect(remote).to.be.instanceOf(RemoteError);
    expect([remote.remoteName, remote.remoteMessage, remote.remoteCode]).to.deep.equal(['RangeError', 'out of range', 'E_RANGE']);
    expect(remote.data).to.deep.equal({ limit: 10 });

    started = Date.now();
    const timeout = (await rejection(rpc.with({ timeoutMs: 300 }).callService(PeerFunctions, 'sleep', 5000))) as TimeoutError;
    expect(timeout).to.be.instanceOf(TimeoutError);
    expect(Date.now() - started).to.be.within(290, 1500);
    // the instance's own deadline fires the handler's signal too
    expect((await p.next<Message>((m) => m.ev === 'aborted')).reason).to.equal('TimeoutError');

    const controller = new AbortController();
    const cancelled = rpc.with({ signal: controller.signal }).callService(PeerFunctions, 'sleep', 5000);
    const { requestId } = await p.next<Message>((m) => m.ev === 'started');
    controller.abort();
    expect(await rejection(cancelled)).to.be.instanceOf(CancelledError);
    const aborted = await p.next<Message>((m) => m.ev === 'aborted' && m.requestId === requestId);
    expect(aborted.reason).to.equal('CancelledError');
  });

  it('an instance SIGKILLed mid-call: the call fails with ConnectionLostError well within its timeout', async () => {
    const a = await peer();
    const b = await peer();
    const rpc = await caller({ timeoutMs: 10_000, probeIntervalMs: 200 });
    const started = Date.now();
    const call = rpc.callService(PeerFunctions, 'sleep', 8000);
    const { instanceId } = await Promise.race([a.peer.next<Message>((m) => m.ev === 'started'), b.peer.next<Message>((m) => m.ev === 'started')]);
    const victim = instanceId === a.instanceId ? a : b;
    await victim.peer.kill();
    const error = (await rejection(call)) as ConnectionLostError;
    expect(error).to.be.instanceOf(ConnectionLostError);
    expect(error.instanceId).to.equal(victim.instanceId);
    expect(Date.now() - started).to.be.below(2000);
    // the survivor keeps serving, and the dead instance is not tried again
    const survivor = victim === a ? b : a;
    for (let i = 0; i < 10; i++) expect((await rpc.callService(PeerFunctions, 'whoami', i)).instanceId).to.equal(survivor.instanceId);
  });

  it('with a watcher on every channel (psubscribe *): a SIGKILLed instance fails its call fast, and a later call gets NoServiceError at once', async () => {
    const watcher = await caller();
    await watcher.client.psubscribe('*', () => undefined);
    const only = await peer();
    const rpc = await caller({ timeoutMs: 10_000, probeIntervalMs: 200 });
    expect((await rpc.callService(PeerFunctions, 'whoami', 0)).instanceId).to.equal(only.instanceId);
    const call = rpc.callService(PeerFunctions, 'sleep', 8000);
    await only.peer.next<Message>((m) => m.ev === 'started');
    let started = Date.now();
    await only.peer.kill();
    expect(await rejection(call)).to.be.instanceOf(ConnectionLostError);
    expect(Date.now() - started, 'found by the probe, not the timeout').to.be.below(2000);
    // still registered (its registry entry outlives it): a new caller, and the same one, find nobody listening
    for (const client of [await caller({ timeoutMs: 10_000 }), rpc]) {
      started = Date.now();
      expect(await rejection(client.callService(PeerFunctions, 'whoami', 1))).to.be.instanceOf(NoServiceError);
      expect(Date.now() - started).to.be.below(1000);
    }
  });

  it('an idempotent call whose instance is SIGKILLed is retried on another instance', async () => {
    const a = await peer();
    const b = await peer();
    const rpc = await caller({ timeoutMs: 10_000, probeIntervalMs: 200 });
    const call = rpc.callService(PeerFunctions, 'idempotentSleep', 500);
    const { instanceId } = await Promise.race([a.peer.next<Message>((m) => m.ev === 'started'), b.peer.next<Message>((m) => m.ev === 'started')]);
    const victim = instanceId === a.instanceId ? a : b;
    const survivor = victim === a ? b : a;
    await victim.peer.kill();
    expect(await call).to.equal(survivor.instanceId);
    expect(rpc.stats().rerouted).to.be.greaterThan(0);
  });

  it('CLIENT KILL of the caller connection rejects calls in flight with ConnectionLostError at once, and calls work again after the reconnect', async () => {
    await peer();
    const rpc = await caller({ timeoutMs: 10_000 });
    const route = rpc.client.route as RedisRoute;
    const calls = [rpc.callService(PeerFunctions, 'sleep', 5000), rpc.callService(PeerFunctions, 'sleep', 5000)];
    await new Promise((resolve) => setTimeout(resolve, 100));
    const id = await route.publisher.client('ID');
    const started = Date.now();
    await admin.client('KILL', 'ID', String(id));
    const errors = await Promise.all(calls.map(rejection));
    for (const error of errors) expect(error).to.be.instanceOf(ConnectionLostError);
    expect(Date.now() - started).to.be.below(1000);
    for (let i = 0; i < 100 && rpc.client.status !== 'ready'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await rpc.callService(PeerFunctions, 'whoami', 1)).i).to.equal(1);
  });
});
