/**
 * What RPC promises, written once and run against every route (memory in
 * one process, redis with separate connections per client): each test
 * builds its clients through the harness it is given.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { z } from 'zod';
import { defineFunctions, schema } from '../../vars/functions';
import { CancelledError } from '../../src/errors/CancelledError';
import { NoHandlerError } from '../../src/errors/NoHandlerError';
import { NoServiceError } from '../../src/errors/NoServiceError';
import { NotConnectedError } from '../../src/errors/NotConnectedError';
import { RemoteError } from '../../src/errors/RemoteError';
import { ServiceBusyError } from '../../src/errors/ServiceBusyError';
import { TimeoutError } from '../../src/errors/TimeoutError';
import { ValidationError } from '../../src/errors/ValidationError';
import type { CallContext } from '../../src/rpc/CallContext';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { RpcOptions } from '../../src/rpc/RedisRPCClientOptions';
import { rejection, until } from '../support/async';
import { Names, serviceRpc } from '../../vars/names';

/** Builds clients on one route; `cleanup` closes whatever it built. */
export interface RpcHarness {
  make(service: string, options?: RpcOptions & { instanceId?: string }): Promise<RedisRPCClient>;
  cleanup(): Promise<void>;
  /**
   * Every client runs under its service's generated least-privilege ACL user:
   * the tests that play a foreign party on raw channels (forbidden there, and
   * covered by test/security/acl.test.ts's denial matrix) are skipped.
   */
  readonly restricted?: boolean;
}

const Calc = defineFunctions(
  { service: 'calc' },
  {
    add: { args: [schema.number(), schema.number()], result: schema.number(), idempotent: true, description: 'a + b' },
    greet: { args: [schema.string(), schema.optional(schema.string())], result: schema.string() },
    broken: { args: [], result: schema.number() },
  },
);

/** The same contract in zod (a Standard Schema), with a transform and an async refinement. */
const Shop = defineFunctions(
  { service: 'shop' },
  {
    order: {
      args: [z.object({ sku: z.string().min(3), qty: z.number().int().positive() }), z.enum(['eu', 'us']).optional()],
      result: z.object({ total: z.number(), region: z.string() }),
      description: 'place an order',
    },
    trimmed: { args: [z.string().transform((text) => text.trim())], result: z.string() },
    checkedLater: { args: [z.string().refine(async (text) => text !== 'forbidden', 'forbidden word')], result: z.string() },
    broken: { args: [], result: z.number() },
  },
);


const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function rpcBehaviour(routeName: string, createHarness: () => Promise<RpcHarness>): void {
  describe(`RedisRPCClient on the ${routeName} route`, function () {
    this.timeout(15_000);
    let harness: RpcHarness;

    beforeEach(async () => {
      harness = await createHarness();
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    async function serve(service = 'calc', options?: RpcOptions): Promise<RedisRPCClient> {
      const server = await harness.make(service, options);
      await server.expose('echo', (args) => args);
      await server.expose('sum', ([a, b]: [number, number]) => a + b);
      await server.expose('context', (_args, context: CallContext) => ({
        callerService: context.callerService,
        callerInstance: context.callerInstance,
        requestId: context.requestId,
        remainingMs: context.deadline - Date.now(),
        aborted: context.signal.aborted,
      }));
      await server.expose('throws', () => {
        throw Object.assign(new TypeError('no such user'), { code: 'E_USER', data: { id: 7, tags: ['a'] } });
      });
      await server.expose('rejects', async () => Promise.reject('a bare string'));
      await server.expose('slow', ([ms]: [number]) => sleep(ms).then(() => 'slow done'));
      return server;
    }

    it('round-trips every msgpack-able argument and result, nothing dropped or shifted', async () => {
      await serve();
      const caller = await harness.make('web');
      const args = [null, undefined, 0, -1.5, 'text', true, [1, [2, null]], { nested: { a: 1 } }, Buffer.from([1, 2, 3]), 2n ** 70n, new Date(86_400_000)];
      const echoed = await caller.callService<unknown[]>('calc', 'echo', ...args);
      expect(echoed).to.have.length(args.length);
      expect(echoed.slice(0, 8)).to.deep.equal(args.slice(0, 8));
      expect(Buffer.isBuffer(echoed[8])).to.equal(true);
      expect((echoed[8] as Buffer).equals(Buffer.from([1, 2, 3]))).to.equal(true);
      expect(echoed[9]).to.equal(2n ** 70n);
      expect((echoed[10] as Date).getTime()).to.equal(86_400_000);
      expect(await caller.callService('calc', 'sum', 2, 3)).to.equal(5);
      expect(await caller.callService('calc', 'echo')).to.deep.equal([]);
    });

    it('refuses an argument it cannot send instead of dropping it', async () => {
      await serve();
      const caller = await harness.make('web');
      const error = await rejection(caller.callService('calc', 'echo', 1, () => 2, 3));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/arguments\[1\] is a function/);
    });

    it('gives the handler its context: caller, request id, deadline, signal', async () => {
      await serve();
      const caller = await harness.make('web');
      const context = await caller.with({ timeoutMs: 4000 }).callService<Record<string, unknown>>('calc', 'context');
      expect(context.callerService).to.equal('web');
      expect(context.callerInstance).to.equal(caller.instanceId);
      expect(context.requestId).to.be.a('string').with.length.within(9, 12); // short ids stay flat strings in V8
      expect(context.remainingMs).to.be.within(3000, 4000);
      expect(Number.isInteger(context.remainingMs), 'timeout_ms travels as whole ms').to.equal(true);
      expect(context.aborted).to.equal(false);
    });

    it('answers an unknown function at once with NoHandlerError listing what exists', async () => {
      await serve();
      const caller = await harness.make('web');
      const started = Date.now();
      const error = await rejection(caller.callService('calc', 'nope'));
      expect(Date.now() - started).to.be.below(1000);
      expect(error).to.be.instanceOf(NoHandlerError);
      expect((error as NoHandlerError).available).to.include.members(['echo', 'sum']);
      expect(error.message).to.match(/"calc" exposes no function "nope"/);
    });

    it('answers requests in both wire forms from a foreign caller, and a malformed one with a malformed fault', async function () {
      if (harness.restricted) this.skip();
      const server = await serve();
      const foreign = await harness.make('foreign');
      const { names, route } = foreign.client;
      const replies: Array<Record<string, unknown>> = [];
      let wake: () => void = () => {};
      await route.subscribe(names.rpcReplies('shell', 'i-1', 'calc'), (message) => {
        replies.push(message as Record<string, unknown>);
        if (replies.length === 3) wake();
      });
      const three = new Promise<void>((resolve) => (wake = resolve));
      const channel = names.rpcInstance('service.calc.rpc', server.instanceId);
      // the protocol page's two request forms, then a request whose arguments are not a list
      await route.publish(channel, { queryId: 'q-1', serviceNameSource: 'shell', sourceInstance: 'i-1', action: 'sum', query: [1, 2], timeout_ms: 5000 });
      await route.publish(channel, {
        headers: { serviceNameSource: 'shell', sourceInstance: 'i-1' },
        payloads: [
          { queryId: 'q-2', action: 'sum', query: [3, 4], timeout_ms: 5000 },
          { queryId: 'q-3', action: 'sum', query: 'not a list', timeout_ms: 5000 },
        ],
      });
      await three;
      const byId = Object.fromEntries(replies.map((reply) => [reply.queryId, reply]));
      expect(byId['q-1']).to.deep.equal({ queryId: 'q-1', result: 3 });
      expect(byId['q-2']).to.deep.equal({ queryId: 'q-2', result: 7 });
      expect(byId['q-3']).to.include({ fault: 'malformed', instanceId: server.instanceId });
      expect((byId['q-3'].error as { message: string }).message).to.match(/query \(the argument list\) is not an array/);
      expect(server.stats().malformedRequests).to.equal(1);
    });

    it('fails at once with NoServiceError when no instance serves the service', async () => {
      const caller = await harness.make('web');
      const started = Date.now();
      const error = await rejection(caller.callService('nobody-home', 'x'));
      expect(Date.now() - started).to.be.below(1000);
      expect(error).to.be.instanceOf(NoServiceError);
      expect(error.message).to.match(/nobody-home/);
    });

    it('with a watcher on every channel: a registered instance that no longer listens is skipped, and alone it means NoServiceError at once', async function () {
      if (harness.restricted) this.skip();
      const watcher = await harness.make('watcher');
      await watcher.client.psubscribe('*', () => undefined);
      // a crashed instance: still in the registry, listening nowhere
      const ghost = { instanceId: 'ghost', service: 'calc', host: 'gone', pid: 1, startedAt: 0 };
      await watcher.client.route.announce(Names.rpcRegistry(serviceRpc('calc')), 'ghost', watcher.client.codec.encode(ghost), 60_000);
      const caller = await harness.make('web', { timeoutMs: 5000 });
      let started = Date.now();
      expect(await rejection(caller.callService('calc', 'sum', 1, 2))).to.be.instanceOf(NoServiceError);
      expect(Date.now() - started).to.be.below(1000);
      await serve();
      started = Date.now();
      const sums = await Promise.all(Array.from({ length: 10 }, (_, i) => harness.make('web').then((fresh) => fresh.callService<number>('calc', 'sum', i, 1))));
      expect(sums).to.deep.equal(Array.from({ length: 10 }, (_, i) => i + 1));
      expect(Date.now() - started).to.be.below(3000);
    });

    it('replies reach exactly the caller that asked: callers of two services with the same instanceId both get theirs', async () => {
      await serve();
      const web = await harness.make('web', { instanceId: 'node-1', timeoutMs: 3000 });
      const admin = await harness.make('admin', { instanceId: 'node-1', timeoutMs: 3000 });
      for (let round = 0; round < 3; round++) {
        const [a, b] = await Promise.all([web.callService<unknown[]>('calc', 'echo', 'web', round), admin.callService<unknown[]>('calc', 'echo', 'admin', round)]);
        expect([a, b]).to.deep.equal([
          ['web', round],
          ['admin', round],
        ]);
      }
    });

    it('no flood of requests naming other callers makes a reply go to anyone but its caller', async function () {
      if (harness.restricted) this.skip();
      const server = await serve();
      const web = await harness.make('web', { instanceId: 'node-1', timeoutMs: 3000 });
      expect(await web.callService('calc', 'sum', 1, 1)).to.equal(2);
      // a foreign party floods the instance with requests naming 4,100 callers, the last one web's own instance id under its own service
      const intruder = await harness.make('intruder');
      const stolen: unknown[] = [];
      await intruder.client.route.subscribe(intruder.client.names.rpcReplies('intruder', 'node-1', 'calc'), (message) => void stolen.push(message));
      const channel = intruder.client.names.rpcInstance(serviceRpc('calc'), server.instanceId);
      for (let i = 0; i <= 4100; i++) {
        const sourceInstance = i === 4100 ? 'node-1' : `x${i}`;
        void intruder.client.route.publish(channel, { queryId: `flood-${i}`, serviceNameSource: 'intruder', sourceInstance, action: 'sum', query: [i, 0], timeout_ms: 5000 });
      }
      await until(() => stolen.length >= 1, 5000, "the intruder's own reply");
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => web.callService<number>('calc', 'sum', i, 100)));
      expect(results).to.deep.equal([100, 101, 102, 103, 104]);
      expect(stolen.map((reply) => (reply as { queryId: string }).queryId)).to.deep.equal(['flood-4100']);
    });

    it('carries the remote error name, message, code and data in RemoteError', async () => {
      const server = await serve();
      const caller = await harness.make('web');
      const error = (await rejection(caller.callService('calc', 'throws'))) as RemoteError;
      expect(error).to.be.instanceOf(RemoteError);
      expect(error.code).to.equal('ERR_REMOTE');
      expect(error.remoteName).to.equal('TypeError');
      expect(error.remoteMessage).to.equal('no such user');
      expect(error.remoteCode).to.equal('E_USER');
      expect(error.data).to.deep.equal({ id: 7, tags: ['a'] });
      expect(error.instanceId).to.equal(server.instanceId);
      const bare = (await rejection(caller.callService('calc', 'rejects'))) as RemoteError;
      expect(bare).to.be.instanceOf(RemoteError);
      expect(bare.remoteMessage).to.equal('a bare string');
    });

    it('times out with TimeoutError naming the service, the function and the timeout', async () => {
      await serve();
      const caller = await harness.make('web', { timeoutMs: 300 });
      const started = Date.now();
      const error = (await rejection(caller.callService('calc', 'slow', 2000))) as TimeoutError;
      const elapsed = Date.now() - started;
      expect(error).to.be.instanceOf(TimeoutError);
      expect(elapsed).to.be.within(280, 1000);
      expect(error.service).to.equal('calc');
      expect(error.functionName).to.equal('slow');
      expect(error.timeoutMs).to.equal(300);
      expect(error.message).to.match(/"calc" function "slow" got no answer within 300 ms/);
      const perCall = (await rejection(caller.with({ timeoutMs: 100 }).callService('calc', 'slow', 2000))) as TimeoutError;
      expect(perCall.timeoutMs).to.equal(100);
      expect(await caller.with({ timeoutMs: 3000 }).callService('calc', 'slow', 50)).to.equal('slow done');
    });

    it('cancels with CancelledError when the signal fires, and the handler signal fires too', async () => {
      const server = await harness.make('calc');
      let handlerAbort: unknown;
      const handlerStarted = new Promise<void>((resolve) => {
        void server.expose('wait', (_args, context: CallContext) => {
          resolve();
          return new Promise((_, reject) =>
            context.signal.addEventListener('abort', () => {
              handlerAbort = context.signal.reason;
              reject(context.signal.reason);
            }),
          );
        });
      });
      const caller = await harness.make('web');
      const controller = new AbortController();
      const pending = caller.with({ signal: controller.signal }).callService('calc', 'wait');
      await handlerStarted;
      controller.abort(new Error('user left'));
      const error = (await rejection(pending)) as CancelledError;
      expect(error).to.be.instanceOf(CancelledError);
      expect((error.reason as Error).message).to.equal('user left');
      for (let i = 0; i < 100 && handlerAbort === undefined; i++) await sleep(10);
      expect(handlerAbort).to.be.instanceOf(CancelledError);
      const already = await rejection(caller.with({ signal: AbortSignal.abort() }).callService('calc', 'wait'));
      expect(already).to.be.instanceOf(CancelledError);
    });

    it('serves modules on module.<name>.rpc with call()', async () => {
      const server = await harness.make('TeraServer');
      await server.expose('online_users', () => ['u1', 'u2'], { module: 'TeraServer.UserManagerModule' });
      const caller = await harness.make('web');
      expect(await caller.call('TeraServer.UserManagerModule', 'online_users')).to.deep.equal(['u1', 'u2']);
      const described = await caller.describeModule('TeraServer.UserManagerModule');
      expect(described.functions.map((f) => f.name)).to.deep.equal(['online_users']);
      expect(await rejection(caller.call('TeraServer.Other', 'online_users'))).to.be.instanceOf(NoServiceError);
    });

    it('types callService from a declaration and checks arguments and results on the serving side', async () => {
      const server = await harness.make('calc');
      await server.implement(Calc, {
        add: ([a, b]) => a + b,
        greet: ([name, greeting]) => `${greeting ?? 'hello'} ${name}`,
        broken: () => 'not a number' as unknown as number,
      });
      const caller = await harness.make('web');
      const sum: number = await caller.callService(Calc, 'add', 1, 2);
      expect(sum).to.equal(3);
      expect(await caller.callService(Calc, 'greet', 'ann')).to.equal('hello ann');
      expect(await caller.callService(Calc, 'greet', 'bob', 'hi')).to.equal('hi bob');
      const wrongType = await rejection(caller.callService('calc', 'add', 1, '2'));
      expect(wrongType).to.be.instanceOf(ValidationError);
      expect(wrongType.message).to.match(/argument 2 of add must be number; received "2"/);
      const tooMany = await rejection(caller.callService('calc', 'add', 1, 2, 3));
      expect(tooMany.message).to.match(/add takes 2 argument\(s\); received 3/);
      const badResult = (await rejection(caller.callService(Calc, 'broken'))) as RemoteError;
      expect(badResult).to.be.instanceOf(RemoteError);
      expect(badResult.remoteCode).to.equal('ERR_RESULT_INVALID');
      const described = await caller.describeService('calc');
      expect(described.functions.find((f) => f.name === 'add')).to.deep.equal({ name: 'add', description: 'a + b', args: ['number', 'number'], result: 'number', idempotent: true });
      // @ts-expect-error: "mul" is not declared
      expect(await rejection(caller.callService(Calc, 'mul', 1, 2))).to.be.instanceOf(ValidationError);
      // @ts-expect-error: add takes numbers
      void caller.callService(Calc, 'add', 'a', 'b').catch(() => undefined);
    });

    it('accepts Standard Schema validators (zod) for arguments and results, with the same types and checks', async () => {
      const server = await harness.make('shop');
      await server.implement(Shop, {
        order: ([{ sku, qty }, region]) => ({ total: qty * (sku === 'pen' ? 2 : 1), region: region ?? 'eu' }),
        trimmed: ([text]) => `[${text}]`,
        checkedLater: ([text]) => text.toUpperCase(),
        broken: () => 'NaN' as unknown as number,
      });
      const caller = await harness.make('web');
      const placed: { total: number; region: string } = await caller.callService(Shop, 'order', { sku: 'pen', qty: 3 }, 'us');
      expect(placed).to.deep.equal({ total: 6, region: 'us' });
      expect(await caller.callService(Shop, 'trimmed', '  padded  ')).to.equal('[padded]');
      expect(await caller.callService(Shop, 'checkedLater', 'fine')).to.equal('FINE');
      const refused = await rejection(caller.callService('shop', 'order', { sku: 'pen', qty: 0 }));
      expect(refused).to.be.instanceOf(ValidationError);
      expect(refused.message).to.match(/argument 1 of order\.qty: /);
      const asyncRefused = await rejection(caller.callService('shop', 'checkedLater', 'forbidden'));
      expect(asyncRefused).to.be.instanceOf(ValidationError);
      expect(asyncRefused.message).to.match(/argument 1 of checkedLater: forbidden word/);
      expect(((await rejection(caller.callService(Shop, 'broken'))) as RemoteError).remoteCode).to.equal('ERR_RESULT_INVALID');
      const described = await caller.describeService('shop');
      expect(described.functions.find((f) => f.name === 'order')).to.deep.equal({ name: 'order', description: 'place an order', args: ['zod schema', 'zod schema'], result: 'zod schema', idempotent: false });
      // @ts-expect-error: qty is a number in the zod schema
      void caller.callService(Shop, 'order', { sku: 'pen', qty: '3' }).catch(() => undefined);
    });

    it('spreads calls over the instances of a service, each call handled once', async () => {
      const counts = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        const server = await harness.make('spread');
        await server.expose('who', ([n]: [number]) => {
          counts.set(server.instanceId, (counts.get(server.instanceId) ?? 0) + 1);
          return { n, by: server.instanceId };
        });
      }
      const caller = await harness.make('web');
      const replies = await Promise.all(Array.from({ length: 300 }, (_, n) => caller.callService<{ n: number; by: string }>('spread', 'who', n)));
      expect(replies.map((r) => r.n)).to.deep.equal(Array.from({ length: 300 }, (_, n) => n));
      expect(counts.size).to.equal(3);
      expect([...counts.values()].reduce((a, b) => a + b, 0)).to.equal(300);
      for (const count of counts.values()) expect(count).to.be.greaterThan(50);
    });

    it("spread 'burst' (the default): a tick's calls go to one instance up to sliceSize, the next burst to the next instance", async () => {
      const handledBy = new Map<number, string>();
      const servers: RedisRPCClient[] = [];
      for (let i = 0; i < 3; i++) {
        const server = await harness.make('burst');
        await server.expose('who', ([n]: [number]) => void handledBy.set(n, server.instanceId));
        servers.push(server);
      }
      const caller = await harness.make('web', { sliceSize: 8 });
      await caller.callService('burst', 'who', -1); // reads the registry
      // one call per tick is a burst of one: calls rotate as they would per call (the first to the two not given the one above)
      handledBy.clear();
      for (let n = 0; n < 6; n++) await caller.callService('burst', 'who', n);
      const perInstance = new Map<string, number>();
      for (const id of handledBy.values()) perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
      expect([...perInstance.values()]).to.deep.equal([2, 2, 2]);
      handledBy.clear();
      // one tick with 24 calls (none in flight before): bursts in call order, each of at most sliceSize calls and at most
      // half the calls in flight once it is given its call (one call always), so that no one instance takes them all
      await Promise.all(Array.from({ length: 24 }, (_, n) => caller.callService('burst', 'who', n)));
      const runs: Array<{ by: string; size: number; after: number }> = [];
      for (let n = 0; n < 24; n++) {
        const by = handledBy.get(n) as string;
        const last = runs[runs.length - 1];
        if (last?.by === by) last.size += 1;
        else runs.push({ by, size: 1, after: n });
      }
      const given = new Map<string, number>();
      for (const run of runs) {
        expect(run.size).to.be.at.most(8);
        const holds = (given.get(run.by) ?? 0) + run.size;
        given.set(run.by, holds);
        if (holds > 1) expect(2 * holds, JSON.stringify(runs)).to.be.at.most(run.after + run.size + 1);
      }
      // far fewer bursts than calls: 1, 2, 4, 8, then sliceSize-capped ones
      expect(runs.length, JSON.stringify(runs)).to.be.at.most(7);
      expect(given.size).to.equal(3);
    });

    it("spread 'burst': bursts of any sizes give every instance the same number of calls, within one burst (fast-check)", async () => {
      // every instance starts at 0, so one not given a call yet (the first ticks may be small) counts as 0
      const counts = new Map<string, number>();
      for (let i = 0; i < 3; i++) {
        const server = await harness.make('even');
        counts.set(server.instanceId, 0);
        await server.expose('who', () => void counts.set(server.instanceId, (counts.get(server.instanceId) ?? 0) + 1));
      }
      const caller = await harness.make('web', { sliceSize: 8 });
      await caller.callService('even', 'who'); // reads the registry
      // round-robin per burst gave an instance the short burst of every tick: ticks of 20 calls were 8, 8 and 4 per instance
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }), async (ticks) => {
          for (const calls of ticks) await Promise.all(Array.from({ length: calls }, () => caller.callService('even', 'who')));
          const handled = [...counts.values()];
          expect(handled).to.have.length(3);
          expect(Math.max(...handled) - Math.min(...handled), JSON.stringify(handled)).to.be.at.most(8);
        }),
        { numRuns: 25 },
      );
    });

    it("spread 'burst': an instance that does not answer holds about a burst of the calls in flight, and the others take the rest", async () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let held = 0;
      let answered = 0;
      for (let i = 0; i < 3; i++) {
        const server = await harness.make('stuck');
        const stuck = i === 0;
        await server.expose('ping', () => 'pong');
        await server.expose('work', async () => {
          if (!stuck) return void (answered += 1);
          held += 1;
          await gate;
        });
      }
      const caller = await harness.make('web', { sliceSize: 8, timeoutMs: 30_000 });
      await caller.callService('stuck', 'ping'); // reads the registry
      // 40 loops of calls: round-robin per burst sent every loop to the stuck instance in turn, until all 40 waited there
      const stop = { at: 1_000 };
      const loops = Array.from({ length: 40 }, async () => {
        while (answered < stop.at) await caller.callService('stuck', 'work');
      });
      await until(() => answered >= stop.at, 15_000, `1,000 calls answered by the two instances that answer (answered ${answered}, held ${held})`);
      // full: a burst (8), or the mean in flight per instance (40 / 3), more than the least-holding instance holds
      expect(held).to.be.at.most(8 + Math.ceil(40 / 3));
      release();
      await Promise.all(loops);
    });

    for (const [count, service] of [
      [10, 'mute'],
      [2, 'mute2'],
    ] as const) {
      it(`spread 'burst', few calls in flight (64, sliceSize 64), ${count} instances: one that never answers holds at most half of them, then one at a time once they timed out`, async function () {
        this.timeout(30_000);
        let release: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let held = 0;
        let answered = 0;
        for (let i = 0; i < count; i++) {
          const server = await harness.make(service);
          const stuck = i === 0;
          await server.expose('work', async () => {
            if (!stuck) return void (answered += 1);
            held += 1;
            await gate;
          });
        }
        const caller = await harness.make('web', { timeoutMs: 400 });
        // reads the registry; 10 calls in one tick: at most half of them reach the stuck instance, and time out
        const firstTimeouts = (await Promise.allSettled(Array.from({ length: 10 }, async () => caller.callService(service, 'work')))).filter((outcome) => outcome.status === 'rejected');
        expect(firstTimeouts.length).to.be.at.most(5);
        const heldBefore = held;
        const started = performance.now();
        const failures: unknown[] = [];
        let running = true;
        // 64 calls put in flight in one tick, each loop calling again as its call ends, for four timeouts and more
        const loops = Array.from({ length: 64 }, async () => {
          while (running) await caller.callService(service, 'work').catch((error: unknown) => void failures.push(error));
        });
        await until(() => performance.now() - started >= 1_700 && answered >= 1_000, 20_000, `1,000 calls answered by the instances that answer (answered ${answered}, held ${held})`);
        running = false;
        const windows = Math.ceil((performance.now() - started) / 400) + 1;
        for (const failure of failures) expect(failure).to.be.instanceOf(TimeoutError);
        // without the half rule a burst of 64 took every call in flight; without the one-at-a-time rule each timeout let it take half again
        expect(held - heldBefore, `held ${held - heldBefore} in ${windows} timeout windows`).to.be.at.most(32 + windows);
        release();
        await Promise.all(loops);
      });
    }

    it("spread 'call': each call of a tick goes to the next instance", async () => {
      const handledBy = new Map<number, string>();
      for (let i = 0; i < 3; i++) {
        const server = await harness.make('percall');
        await server.expose('who', ([n]: [number]) => void handledBy.set(n, server.instanceId));
      }
      const caller = await harness.make('web', { spread: 'call', sliceSize: 8 });
      await caller.callService('percall', 'who', -1);
      handledBy.clear();
      await Promise.all(Array.from({ length: 24 }, (_, n) => caller.callService('percall', 'who', n)));
      for (let n = 0; n + 1 < 24; n++) expect(handledBy.get(n)).to.not.equal(handledBy.get(n + 1));
      for (let n = 0; n + 3 < 24; n++) expect(handledBy.get(n)).to.equal(handledBy.get(n + 3));
    });

    it('refuses an unknown spread, naming the option and the value', async () => {
      const error = await rejection(harness.make('web', { spread: 'random' as never }));
      expect(error).to.be.instanceOf(ValidationError);
      expect((error as Error).message).to.contain('spread').and.contain('random');
    });

    it('bounds concurrency: excess calls queue, then are refused with ServiceBusyError', async () => {
      const server = await harness.make('calc', { concurrency: 2, maxQueued: 1 });
      let running = 0;
      let peak = 0;
      await server.expose('work', async () => {
        running += 1;
        peak = Math.max(peak, running);
        await sleep(150);
        running -= 1;
        return 'done';
      });
      const caller = await harness.make('web');
      const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => caller.callService('calc', 'work')));
      expect(outcomes.filter((o) => o.status === 'fulfilled')).to.have.length(3);
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).to.be.instanceOf(ServiceBusyError);
      expect(peak).to.equal(2);
    });

    it('keeps answering other calls and events while a handler is slow', async () => {
      const server = await serve();
      const caller = await harness.make('web');
      const received: unknown[] = [];
      await caller.client.subscribe('module.test.events', (payload) => void received.push(payload));
      const slow = caller.with({ timeoutMs: 5000 }).callService('calc', 'slow', 800);
      const started = Date.now();
      expect(await caller.callService('calc', 'sum', 1, 1)).to.equal(2);
      await server.client.publish('module.test.events', { hello: 1 });
      for (let i = 0; i < 50 && received.length === 0; i++) await sleep(10);
      expect(received).to.deep.equal([{ hello: 1 }]);
      expect(Date.now() - started).to.be.below(500);
      expect(await slow).to.equal('slow done');
    });

    it('close() rejects pending calls, lets handlers in progress finish, and refuses new calls', async () => {
      const server = await serve();
      const caller = await harness.make('web');
      const inProgress = caller.with({ timeoutMs: 5000 }).callService('calc', 'slow', 300);
      await sleep(50);
      const other = await harness.make('other');
      const pending = other.with({ timeoutMs: 5000 }).callService('calc', 'slow', 2000);
      await sleep(50);
      const closing = other.close();
      const error = (await rejection(pending)) as CancelledError;
      expect(error).to.be.instanceOf(CancelledError);
      expect(error.message).to.match(/closing/);
      await closing;
      // the serving side drains: the call in progress still gets its answer
      const serverClosed = server.close();
      expect(await inProgress).to.equal('slow done');
      await serverClosed;
      expect(await rejection(other.callService('calc', 'sum', 1, 2))).to.be.instanceOf(NotConnectedError);
      expect(await rejection(caller.callService('calc', 'sum', 1, 2))).to.be.instanceOf(NoServiceError);
    });

    it('sends a burst of calls, and its replies, in slices of sliceSize, every call answered', async () => {
      const server = await serve('calc', { sliceSize: 10 });
      const caller = await harness.make('web', { sliceSize: 10 });
      await caller.callService('calc', 'sum', 0, 0); // the registry is read: the burst below goes out in one tick
      const sent = { caller: caller.client.stats().framesSent, server: server.client.stats().framesSent };
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => caller.callService<number>('calc', 'sum', i, 1)));
      expect(results).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));
      // 100 requests in one tick: 10 frames of 10, not one frame of 100
      expect(caller.client.stats().framesSent - sent.caller).to.equal(10);
      // replies leave as each slice of 10 is ready: at least 10 frames
      expect(server.client.stats().framesSent - sent.server).to.be.at.least(10);
    });

    it('validates options, naming the option and the value received', async () => {
      for (const [options, pattern] of [
        [{ timeoutMs: 0 }, /timeoutMs must be a positive integer; received 0/],
        [{ concurrency: 1.5 }, /concurrency must be a positive integer; received 1.5/],
        [{ maxQueued: -1 }, /maxQueued must be a non-negative integer; received -1/],
        [{ sliceSize: 0 }, /sliceSize must be a positive integer; received 0/],
      ] as const) {
        expect(() => new RedisRPCClient({ service: 'x', route: 'memory', ...options })).to.throw(ValidationError, pattern);
      }
      const caller = await harness.make('web');
      expect(() => caller.with({ timeoutMs: -5 })).to.throw(ValidationError, /timeoutMs \(call option\) must be a positive integer; received -5/);
      expect(await rejection(caller.callService('bad key!', 'x'))).to.be.instanceOf(ValidationError);
      expect(await rejection(caller.expose('$describe', () => 1))).to.be.instanceOf(ValidationError);
    });
  });
}
