/**
 * The four query types of seeds/000 through one API, with the same observable
 * behaviour on the memory route and on the redis route.
 */
import { expect } from 'chai';
import { MsgpackCodec } from '../../src/envelope/codec';
import { createQuery } from '../../src/envelope/query';
import { QueryRoute, QueryState, QueryType, type Query } from '../../src/envelope/types';
import { CancelledError, NoHandlerError, NoServiceError, NotConnectedError, PayloadTooLargeError, RemoteError, TimeoutError, ValidationError } from '../../src/errors/index';
import { MemoryBus } from '../../src/route/MemoryBus';
import type { QueryContext } from '../../src/queues/QueryHandlers';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { RedisRPCClientOptions } from '../../src/rpc/RedisRPCClientOptions';
import { rejection, until } from '../support/async';
import { testTargets, type TargetKind, type TestTarget } from '../support/redis-targets';
import { startAclRedis } from '../support/acl';
import { ACL_CAPABILITIES, aclSetUserLine, callersOf, serviceAclLine, type AclDeployment, type ServicePlan } from '../../vars/acl';

interface Setup {
  name: string;
  options(service: string, extra?: Partial<RedisRPCClientOptions>): RedisRPCClientOptions;
  dispose(): Promise<void>;
  /** Before each test, with the services it may create (their ACL users, where clients run under generated ones). */
  begin?(services: string[]): Promise<void>;
}

/** The operator's client: dead letters, queue status and raw inspection of any service go through it (under ACLs: the namespace-wide user with `inspect`). */
export const OPERATOR = 'ops';

async function memory(): Promise<Setup> {
  const bus = new MemoryBus();
  return {
    name: 'memory',
    options: (service, extra = {}) => ({ service, route: 'memory', memoryBus: bus, registry: { heartbeatMs: 50, ttlMs: 400 }, ...extra }) as RedisRPCClientOptions,
    dispose: async () => undefined,
  };
}

function onRedis(kind: TargetKind): () => Promise<Setup> {
  return async () => {
    const server: TestTarget = await kind.start();
    return {
      name: `redis${kind.suffix}`,
      options: (service, extra = {}) => ({ service, redis: server.url, namespace: server.namespace, registry: { heartbeatMs: 50, ttlMs: 400 }, ...extra }) as RedisRPCClientOptions,
      dispose: () => server.stop(),
    };
  };
}

/** Every client under its service's generated least-privilege ACL user; the operator under the namespace-wide rules with `inspect`. */
async function underAcl(): Promise<Setup> {
  const acl = await startAclRedis();
  const namespace = 'aclq';
  let deployment: AclDeployment = { namespace, services: {} };
  return {
    name: 'redis under generated ACLs',
    options: (service, extra = {}) => {
      const callers = service === OPERATOR ? {} : { callers: callersOf(deployment, service) };
      return { service, redis: acl.url(service), namespace, registry: { heartbeatMs: 50, ttlMs: 400 }, ...callers, ...extra } as RedisRPCClientOptions;
    },
    async begin(services) {
      // each may call (SYNC, ASYNC) and send to (FIRE_AND_FORGET, BROADCAST) every other
      // the unknown destinations some tests address are declared too: they must meet NoServiceError, not the ACL
      const targets = [...services, 'nobody-ever-ran-this', 'no-such-service'];
      const plan: ServicePlan = { calls: targets, sends: targets };
      deployment = { namespace, services: Object.fromEntries(services.map((service) => [service, plan])) };
      for (const service of services) await acl.setUser(serviceAclLine(deployment, service, { password: `${service}-pw` }));
      await acl.setUser(aclSetUserLine(OPERATOR, { namespace, capabilities: ACL_CAPABILITIES.filter((c) => c !== 'cluster'), password: `${OPERATOR}-pw` }));
    },
    dispose: () => acl.stop(),
  };
}

// consumers from connect() on: these tests register handlers after connecting and send at once
const fast = { visibilityTimeoutMs: 300, blockMs: 50, maxAttempts: 3, consume: true };

for (const [label, make] of [['memory', memory], ...testTargets().map((kind) => [`redis${kind.suffix}`, onRedis(kind)] as const), ['redis under generated ACLs', underAcl]] as const) {
  describe(`query types on the ${label} route`, function () {
    this.timeout(30_000);
    let setup: Setup;
    let clients: RedisRPCClient[];
    let service: string;
    const client = async (name: string, extra: Partial<RedisRPCClientOptions> = {}): Promise<RedisRPCClient> => {
      const created = new RedisRPCClient(setup.options(name, { queues: fast, ...extra }));
      clients.push(created);
      await created.connect();
      return created;
    };

    before(async () => {
      setup = await make();
    });
    after(async () => {
      await setup.dispose();
    });
    let operator: Promise<RedisRPCClient> | undefined;
    const inspector = (): Promise<RedisRPCClient> => (operator ??= client(OPERATOR));
    beforeEach(async () => {
      clients = [];
      operator = undefined;
      service = `svc${Math.random().toString(36).slice(2, 8)}`;
      await setup.begin?.([service, `${service}solo`, `${service}-lazy`, `${service}-caller`, 'sender', 'caller', 'plain']);
    });
    afterEach(async () => {
      await Promise.all(clients.map((c) => c.close()));
    });

    it('FIRE_AND_FORGET: stored, then processed once by one instance, in order, with the context a handler needs', async () => {
      const seen: Array<[unknown, QueryContext]> = [];
      const [one, two] = [await client(service), await client(service)];
      for (const instance of [one, two]) instance.handle('note', (query, context) => void seen.push([query, context]));
      const sender = await client('sender');
      const envelopes: Query[] = [];
      for (let i = 0; i < 50; i++) envelopes.push(await sender.fireAndForget(service, 'note', { i }));
      expect(envelopes[0]).to.include({ type: QueryType.FIRE_AND_FORGET, state: QueryState.PENDING, serviceNameSource: 'sender', serviceNameDest: service, action: 'note' });
      await until(() => seen.length >= 50);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).to.have.length(50);
      expect(new Set(seen.map(([, c]) => c.queryId))).to.deep.equal(new Set(envelopes.map((e) => e.queryId)));
      const [, context] = seen[0];
      expect(context).to.include({ type: QueryType.FIRE_AND_FORGET, action: 'note', serviceNameSource: 'sender', processAttempts: 1 });
      // one consumer keeps the sending order
      const solo = `${service}solo`;
      const order: number[] = [];
      (await client(solo)).handle('note', ({ i }: { i: number }) => void order.push(i));
      for (let i = 0; i < 30; i++) await sender.fireAndForget(solo, 'note', { i });
      await until(() => order.length === 30);
      expect(order).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
    });

    it('a caller-only client creates no stream, group or key for the queues; consumption starts with its first handler', async () => {
      const lazy = await client(`${service}-lazy`, { queues: { ...fast, consume: 'when-handled' } });
      const { names } = lazy.client;
      const { route } = (await inspector()).client;
      const durableKeys = async () => (await Promise.all([names.queryStream(lazy.service), names.broadcastStream(lazy.service), names.broadcastSeen(lazy.service, lazy.instanceId)].map((key) => route.keys(key)))).flat();
      const caller = await client(`${service}-caller`);
      await caller.fireAndForget(service, 'nobody-handles', {}).catch(() => undefined); // refused: no consumer ever ran for it
      expect(await durableKeys()).to.deep.equal([]);
      const seen: unknown[] = [];
      let arrived: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (arrived = resolve));
      lazy.handle('note', (query) => {
        seen.push(query);
        arrived();
      });
      await lazy.connect(); // resolves once consumption has started
      expect((await durableKeys()).length).to.equal(3);
      await caller.fireAndForget(lazy.service, 'note', { n: 1 });
      await done;
      expect(seen).to.deep.equal([{ n: 1 }]);
    });

    it('FIRE_AND_FORGET: a failing handler is retried with processAttempts counted, then dead-lettered; replay processes it', async () => {
      const attempts: number[] = [];
      let healthy = false;
      const worker = await client(service);
      worker.handle('flaky', (_query, context) => {
        attempts.push(context.processAttempts);
        if (!healthy) throw Object.assign(new Error('downstream unavailable'), { code: 'E_DOWNSTREAM' });
      });
      const sender = await client('sender');
      const sent = await sender.fireAndForget(service, 'flaky', { order: 7 });
      await until(async () => (await (await inspector()).deadLetters(service)).length === 1, 10_000);
      expect(attempts).to.deep.equal([1, 2, 3]);
      const [letter] = await (await inspector()).deadLetters(service);
      expect(letter).to.include({ reason: 'max-attempts', attempts: 3 });
      expect(letter.query?.queryId).to.equal(sent.queryId);
      expect(letter.lastError).to.deep.equal({ ok: false, errorName: 'Error', message: 'downstream unavailable', code: 'E_DOWNSTREAM' });
      expect((await (await inspector()).queueStatus(service)).deadLetters).to.equal(1);

      healthy = true;
      const progress: number[] = [];
      expect(await (await inspector()).replayDeadLetters(service, undefined, (done) => progress.push(done))).to.equal(1);
      expect(progress).to.deep.equal([1]);
      await until(() => attempts.length === 4);
      expect(attempts[3]).to.equal(1);
      expect(await (await inspector()).deadLetters(service)).to.deep.equal([]);
    });

    it('FIRE_AND_FORGET: the same queryId sent twice is processed once', async () => {
      const processed: string[] = [];
      (await client(service)).handle('once', (_q, context) => void processed.push(context.queryId));
      const sender = await client('sender');
      await sender.fireAndForget(service, 'once', 1, { queryId: 'order-42' });
      await until(() => processed.length === 1);
      await sender.fireAndForget(service, 'once', 1, { queryId: 'order-42' });
      await sender.fireAndForget(service, 'once', 2, { queryId: 'order-43' });
      await until(() => processed.length === 2);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(processed).to.deep.equal(['order-42', 'order-43']);
      expect(clients[0].queryStats().fireAndForget.duplicatesSuppressed).to.equal(1);
    });

    it('inspection: depth, pending and age of the oldest while nobody consumes; processed entries are trimmed afterwards', async () => {
      const first = await client(service);
      await first.close(); // the destination is known, and nobody consumes now
      const sender = await client('sender');
      await sender.fireAndForget(service, 'note', 1);
      await sender.fireAndForget(service, 'note', 2);
      await new Promise((resolve) => setTimeout(resolve, 30));
      const waiting = await (await inspector()).queueStatus(service);
      expect(waiting.fireAndForget).to.include({ depth: 2, pending: 0 });
      expect(waiting.fireAndForget.oldestAgeMs).to.be.at.least(25);
      const seen: unknown[] = [];
      (await client(service)).handle('note', (query) => void seen.push(query));
      await until(() => seen.length === 2);
      await until(async () => {
        const status = await (await inspector()).queueStatus(service);
        return status.fireAndForget.depth === 0 && status.fireAndForget.pending === 0 && status.fireAndForget.oldestAgeMs === 0;
      }, 5000, 'the queue to drain');
      const stream = sender.client.names.queryStream(service);
      await until(async () => (await (await inspector()).client.route.streamInfo(stream)).length <= 1, 5000, 'the processed entries to be trimmed');
      expect(seen).to.deep.equal([1, 2]);
    });

    it('accepts a lone envelope appended by a foreign writer (no frame)', async () => {
      const processed: unknown[] = [];
      const worker = await client(service);
      worker.handle('ok', (query) => void processed.push(query));
      await worker.client.route.streamAdd(worker.client.names.queryStream(service), new MsgpackCodec().encode(validQuery(service)));
      await until(() => processed.length === 1);
      expect(processed).to.deep.equal([1]);
    });

    it('bad input: unknown destination, oversized query, malformed entry, unknown action: clear errors or dead letters, never a stuck queue', async () => {
      const processed: unknown[] = [];
      const worker = await client(service, { limits: { maxPayloadBytes: 4096 } });
      worker.handle('ok', (query) => void processed.push(query));
      const sender = await client('sender', { limits: { maxPayloadBytes: 4096 } });

      const unknown = await rejection(sender.fireAndForget('nobody-ever-ran-this', 'ok', 1));
      expect(unknown).to.be.instanceOf(NoServiceError);
      // a durable query is stored, not called: the message says what was refused
      expect((unknown as Error).message).to.match(/^cannot send a FIRE_AND_FORGET query to "nobody-ever-ran-this" \(action "ok"\): no instance of this service has ever consumed queries/);
      expect((await rejection(sender.broadcast('nobody-ever-ran-this', 7, 1))).message).to.match(/^cannot send a BROADCAST query to "nobody-ever-ran-this" \(action 7\): /);
      expect(await rejection(sender.fireAndForget('bad name!', 'ok', 1))).to.be.instanceOf(ValidationError);
      const oversized = await rejection(sender.fireAndForget(service, 'ok', 'x'.repeat(10_000)));
      expect(oversized).to.be.instanceOf(PayloadTooLargeError);

      // a foreign writer appends garbage and a query with a wrong field type to the stream
      const stream = worker.client.names.queryStream(service);
      await worker.client.route.streamAdd(stream, Buffer.from('not msgpack \xc1'));
      const codec = new MsgpackCodec();
      await worker.client.route.streamAdd(stream, codec.encode({ ...(validQuery(service)), processAttempts: 'many' }));
      await sender.fireAndForget(service, 'nobody-handles-this', 1);
      await sender.fireAndForget(service, 'ok', 'after the bad ones');
      await until(() => processed.length === 1);
      expect(processed).to.deep.equal(['after the bad ones']);
      await until(async () => (await (await inspector()).deadLetters(service)).length === 3);
      const reasons = (await (await inspector()).deadLetters(service)).map((l) => l.reason);
      expect(reasons).to.deep.equal(['malformed', 'malformed', 'no-handler']);
      const status = await (await inspector()).queueStatus(service);
      expect(status.fireAndForget).to.deep.include({ depth: 0, pending: 0 });
      // nothing to replay for entries that never decoded; the no-handler one goes back
      expect(await (await inspector()).replayDeadLetters(service)).to.equal(1);
    });

    it('BROADCAST: every live instance processes each query once; a later instance starts from new ones', async () => {
      const seen = new Map<string, unknown[]>();
      const join = async (): Promise<RedisRPCClient> => {
        const instance = await client(service);
        seen.set(instance.instanceId, []);
        instance.handle('reload', (query) => void seen.get(instance.instanceId)?.push(query));
        return instance;
      };
      const [a, b] = [await join(), await join()];
      const sender = await client('sender');
      const first = await sender.broadcast(service, 'reload', { v: 1 });
      expect(first).to.include({ type: QueryType.BROADCAST, state: QueryState.PENDING });
      await until(() => seen.get(a.instanceId)?.length === 1 && seen.get(b.instanceId)?.length === 1);
      const c = await join();
      await sender.broadcast(service, 'reload', { v: 2 });
      await until(() => [a, b, c].every((i) => (seen.get(i.instanceId) ?? []).some((q) => (q as { v: number }).v === 2)));
      expect(seen.get(a.instanceId)).to.deep.equal([{ v: 1 }, { v: 2 }]);
      expect(seen.get(b.instanceId)).to.deep.equal([{ v: 1 }, { v: 2 }]);
      expect(seen.get(c.instanceId)).to.deep.equal([{ v: 2 }]);
      const status = await (await inspector()).queueStatus(service);
      expect(status.broadcast.instances.map((i) => i.instanceId).sort()).to.deep.equal([a.instanceId, b.instanceId, c.instanceId].sort());
    });

    it('BROADCAST: an instance gone longer than broadcastRetentionMs stops holding the queue back, and processed entries are trimmed', async () => {
      const retention = { ...fast, broadcastRetentionMs: 300 };
      const seen: unknown[] = [];
      const stays = await client(service, { queues: retention });
      stays.handle('reload', (query) => void seen.push(query));
      const leaves = await client(service, { queues: retention });
      leaves.handle('reload', () => undefined);
      await leaves.close();
      const sender = await client('sender', { queues: retention });
      for (let v = 0; v < 20; v++) await sender.broadcast(service, 'reload', { v });
      await until(() => seen.length === 20, 5000, 'the live instance to process every broadcast');
      // the gone instance's group is removed once its last heartbeat is older than the retention, then the stream is trimmed
      await until(async () => (await (await inspector()).queueStatus(service)).broadcast.instances.length === 1, 5000, 'the gone instance to be dropped');
      expect((await (await inspector()).queueStatus(service)).broadcast.instances.map((i) => i.instanceId)).to.deep.equal([stays.instanceId]);
      await until(async () => (await (await inspector()).queueStatus(service)).broadcast.length <= 1, 5000, 'the processed broadcasts to be trimmed');
    });

    it('maintenance: one instance of a service looks at its streams per round, and another takes over when it leaves', async () => {
      const retention = { ...fast, broadcastRetentionMs: 300 };
      const instances = [await client(service, { queues: retention }), await client(service, { queues: retention }), await client(service, { queues: retention })];
      // each stream look (XINFO GROUPS) of each instance, counted from now
      const looks = new Map<RedisRPCClient, number>(instances.map((instance) => [instance, 0]));
      for (const instance of instances) {
        const route = instance.client.route;
        const streamInfo = route.streamInfo.bind(route);
        route.streamInfo = (stream) => {
          looks.set(instance, (looks.get(instance) ?? 0) + 1);
          return streamInfo(stream);
        };
      }
      // rounds are 100 ms apart: after a dozen, one instance looked every round and the others never
      await until(() => Math.max(...looks.values()) >= 24, 5000, 'a dozen maintenance rounds');
      const lookers = instances.filter((instance) => (looks.get(instance) ?? 0) > 0);
      expect(lookers, 'instances that looked at the streams').to.have.length(1);
      const [maintainer] = lookers;
      await maintainer.close();
      const rest = instances.filter((instance) => instance !== maintainer);
      for (const instance of rest) looks.set(instance, 0);
      // the lease lapses (three rounds) and one of the others maintains from then on: it removes the gone instance's group
      await until(() => rest.some((instance) => (looks.get(instance) ?? 0) >= 4), 5000, 'another instance to take over maintenance');
      expect(rest.filter((instance) => (looks.get(instance) ?? 0) > 0)).to.have.length(1);
      await until(async () => (await rest[0].queueStatus(service)).broadcast.instances.length === 2, 5000, 'the gone instance to be dropped');
    });

    it('ASYNC: a handle that is the envelope, PENDING then DONE with result, response and response_ts', async () => {
      (await client(service)).handle('square', async (n: number) => n * n);
      const caller = await client('caller');
      const handle = caller.sendAsync<number>(service, 'square', 12);
      expect(handle.state).to.equal(QueryState.PENDING);
      expect(handle.type).to.equal(QueryType.ASYNC);
      expect(Object.keys(handle)).to.not.include('promise');
      const settled = await handle.promise;
      expect(settled).to.equal(handle);
      expect(handle).to.include({ state: QueryState.DONE, result: 144 });
      expect(handle.response).to.deep.equal({ ok: true });
      expect(handle.response_ts).to.be.greaterThan(handle.query_ts);
      expect(handle.error).to.equal(undefined);
      expect(await handle.wait()).to.equal(144);
    });

    it('ASYNC: ERROR with the typed error on the handle (remote failure, unknown action, timeout)', async () => {
      const worker = await client(service);
      worker.handle('boom', () => {
        throw Object.assign(new Error('no such user'), { code: 'E_USER' });
      });
      worker.handle('slow', () => new Promise((resolve) => setTimeout(resolve, 2000)));
      const caller = await client('caller');
      const failed = await caller.sendAsync(service, 'boom', null).promise;
      expect(failed.state).to.equal(QueryState.ERROR);
      expect(failed.error).to.be.instanceOf(RemoteError);
      expect(failed.response).to.include({ ok: false, errorName: 'RemoteError' });
      expect((failed.error as RemoteError).remoteMessage).to.equal('no such user');
      const unknown = await caller.sendAsync(service, 'missing', null).promise;
      expect(unknown.error).to.be.instanceOf(NoHandlerError);
      expect((unknown.error as NoHandlerError).available).to.have.members(['boom', 'slow']);
      expect((unknown.error as NoHandlerError).functionName).to.equal('missing');
      expect(unknown.error?.message).to.equal(`"${service}" handles no action "missing" (it handles: ${(unknown.error as NoHandlerError).available.map((a) => `"${a}"`).join(', ')})`);
      const started = Date.now();
      const late = await caller.sendAsync(service, 'slow', null, { timeoutMs: 150 }).promise;
      expect(late.error).to.be.instanceOf(TimeoutError);
      expect(Date.now() - started).to.be.lessThan(1500);
    });

    it('SYNC: the result, or the typed errors of RPC', async () => {
      const worker = await client(service);
      worker.handle('add', ([a, b]: [number, number]) => a + b);
      worker.handle('boom', () => {
        throw new TypeError('bad input');
      });
      const caller = await client('caller');
      expect(await caller.sendSync(service, 'add', [2, 3])).to.equal(5);
      expect(await rejection(caller.sendSync(service, 'boom'))).to.be.instanceOf(RemoteError);
      const missing = await rejection(caller.sendSync(service, 'missing'));
      expect(missing).to.be.instanceOf(NoHandlerError);
      expect((missing as NoHandlerError).available).to.have.members(['add', 'boom']);
      expect(missing.message).to.match(new RegExp(`^"${service.replace(/\./g, '\\.')}" handles no action "missing" \\(it handles: "(add|boom)", "(add|boom)"\\)$`));
      expect(await rejection(caller.sendSync('no-such-service', 'add', [1, 1]))).to.be.instanceOf(NoServiceError);
      const done = await caller.send(QueryType.SYNC, service, 'add', [20, 22]);
      expect(done).to.include({ state: QueryState.DONE, result: 42, type: QueryType.SYNC });
    });

    it('close(): pending ASYNC queries are awaited for the grace period, then cancelled with state ERROR', async () => {
      const worker = await client(service);
      worker.handle('quick', () => new Promise((resolve) => setTimeout(() => resolve('made it'), 50)));
      worker.handle('forever', () => new Promise(() => undefined));
      const caller = new RedisRPCClient(setup.options('caller', { queryGraceMs: 300, timeoutMs: 10_000 }));
      await caller.connect();
      const quick = caller.sendAsync(service, 'quick');
      const stuck = caller.sendAsync(service, 'forever');
      const started = Date.now();
      await caller.close();
      expect(Date.now() - started).to.be.within(250, 3000);
      expect(quick).to.include({ state: QueryState.DONE, result: 'made it' });
      expect(stuck.state).to.equal(QueryState.ERROR);
      expect(stuck.error).to.be.instanceOf(CancelledError);
      const late = caller.sendAsync(service, 'quick');
      await late.promise;
      expect(late.state).to.equal(QueryState.ERROR);
      expect(late.error).to.be.instanceOf(NotConnectedError);
    });

    it('local shortcut: a service in the same process is called directly, without encoding', async () => {
      class Money {
        constructor(readonly cents: number) {}
      }
      const worker = await client(service, { localShortcut: true });
      let received: unknown;
      worker.handle('pay', (amount: Money) => {
        received = amount;
        return amount;
      });
      const caller = await client('caller', { localShortcut: true });
      const amount = new Money(250);
      const handle = caller.sendAsync(service, 'pay', amount);
      expect(handle.route).to.equal(QueryRoute.LOCAL);
      await handle.promise;
      expect(received).to.equal(amount); // the same object: nothing was encoded
      expect(handle.result).to.equal(amount);
      expect(await caller.sendSync(service, 'pay', amount)).to.equal(amount);
      const fired = await caller.fireAndForget(service, 'pay', new Money(1));
      expect(fired.route).to.equal(QueryRoute.LOCAL);
      // without the option on the caller, the same query goes through the route
      const plain = await client('plain');
      const routed = plain.sendAsync(service, 'pay', { cents: 3 });
      expect(routed.route).to.not.equal(QueryRoute.LOCAL);
      expect((await routed.promise).result).to.deep.equal({ cents: 3 });
    });
  });
}

function validQuery(destination: string): Query {
  return createQuery({ serviceNameSource: 'foreign', serviceNameDest: destination, type: QueryType.FIRE_AND_FORGET, action: 'ok', query: 1, timeout_ms: 0 });
}

