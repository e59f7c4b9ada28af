/**
 * The durable and request query API under hostile arguments (review
 * "durable", findings 2, 3, 5, 6): what a receiver would refuse is refused at
 * the call with a ValidationError naming the option and the value, before
 * anything is stored; ms options that feed a timer stay within what a timer
 * takes; after close() every call fails with NotConnectedError naming the
 * operation, never a Redis key, and sendAsync still returns its handle.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { QueryState } from '../../src/envelope/types';
import { NotConnectedError, ValidationError } from '../../src/errors/index';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { rejection, until } from '../support/async';
import { useRedis } from '../support/redis-server';

describe('durable query API under hostile arguments', function () {
  this.timeout(30_000);
  const redis = useRedis();
  const clients: RedisRPCClient[] = [];
  const client = async (service: string, options: Record<string, unknown> = {}): Promise<RedisRPCClient> => {
    const rpc = new RedisRPCClient({ service, redis: redis().url, namespace: redis().namespace, ...options });
    clients.push(rpc);
    return rpc;
  };
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((rpc) => rpc.close()));
  });

  describe('a queryId the receiver refuses', () => {
    const BAD_IDS: Array<[string, unknown]> = [
      ['an object', { a: 1 }],
      ['an empty string', ''],
      ['a number', 5],
      ['an array', [1]],
      ['a boolean', true],
      ['null', null],
      ['a string of 201 characters', 'x'.repeat(201)],
    ];

    it('is refused by fireAndForget and broadcast with a ValidationError naming queryId and the value; nothing is stored, nothing dead-lettered', async () => {
      const processed: unknown[] = [];
      const worker = await client('qid-worker');
      worker.handle('job', (query: { n: string }, context) => void processed.push([query.n, context.queryId]));
      await worker.connect();
      const sender = await client('qid-sender', { queues: { consume: false } });
      await sender.connect();
      for (const [what, queryId] of BAD_IDS) {
        for (const send of ['fireAndForget', 'broadcast'] as const) {
          const error = await rejection(sender[send]('qid-worker', 'job', { n: what }, { queryId: queryId as string }));
          expect(error, `${send} with ${what}`).to.be.instanceOf(ValidationError);
          expect(error.message).to.match(/^queryId must be a non-empty string of at most 200 characters/);
          expect(error.message).to.include('received');
        }
      }
      expect((await rejection(sender.fireAndForget('qid-worker', 'job', {}, { queryId: 'x'.repeat(201) }))).message).to.include('(201 characters)');
      // a 200-character id is the receiver's limit: accepted and processed under that id
      await sender.fireAndForget('qid-worker', 'job', { n: 'last' }, { queryId: 'y'.repeat(200) });
      await until(() => processed.length > 0, 10_000, 'the valid query processed');
      // the stream is read in order: had any refused one been stored, it would have been dead-lettered by now
      expect(processed).to.deep.equal([['last', 'y'.repeat(200)]]);
      expect(await sender.deadLetters('qid-worker')).to.deep.equal([]);
      const status = await sender.queueStatus('qid-worker');
      expect(status.broadcast.length).to.equal(0);
    });

    it('is refused by the local shortcut too (which stores nothing, but must not run a query a remote instance would refuse)', async () => {
      let ran = 0;
      const worker = await client('qid-local', { localShortcut: true });
      worker.handle('job', () => void (ran += 1));
      await worker.connect();
      for (const [what, queryId] of BAD_IDS) {
        const error = await rejection(worker.fireAndForget('qid-local', 'job', {}, { queryId: queryId as string }));
        expect(error, what).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/^queryId must be/);
      }
      const error = await rejection(worker.fireAndForget('qid-local', 'job', {}, { timeoutMs: -1 }));
      expect(error).to.be.instanceOf(ValidationError);
      await new Promise((resolve) => setImmediate(resolve));
      expect(ran).to.equal(0);
    });
  });

  describe('after close()', () => {
    it('sendAsync returns a handle that settles ERROR with NotConnectedError; sendSync and send reject with it; nothing throws synchronously', async () => {
      const worker = await client('closed-worker');
      worker.handle('job', (query) => query);
      await worker.connect();
      const caller = await client('closed-caller');
      await caller.connect();
      expect(await caller.sendSync('closed-worker', 'job', 1)).to.equal(1);
      await caller.close();

      const handle = caller.sendAsync('closed-worker', 'job', 2);
      expect(handle.serviceNameDest).to.equal('closed-worker');
      expect(await handle.promise).to.equal(handle); // never rejects
      expect(handle.state).to.equal(QueryState.ERROR);
      expect(handle.error).to.be.instanceOf(NotConnectedError);
      expect(handle.error?.message).to.equal('cannot send an ASYNC query to "closed-worker" (action "job"): the client is closed; create a new client');
      expect(handle.response).to.include({ ok: false, errorName: 'NotConnectedError', code: 'ERR_NOT_CONNECTED' });
      expect(await rejection(handle.wait())).to.equal(handle.error);
      // even with options it would refuse (the client is closed: that is what the caller needs to know)
      expect((await caller.sendAsync('closed-worker', 'job', 3, { timeoutMs: -5 }).promise).error).to.be.instanceOf(NotConnectedError);

      let sync: Promise<unknown> | undefined;
      expect(() => (sync = caller.sendSync('closed-worker', 'job', 4))).not.to.throw();
      const syncError = await rejection(sync!);
      expect(syncError).to.be.instanceOf(NotConnectedError);
      expect(syncError.message).to.match(/^cannot send a SYNC query to "closed-worker" \(action "job"\): the client is closed/);
      expect(await rejection(caller.send('SYNC' as never, 'closed-worker', 'job', 5))).to.be.instanceOf(NotConnectedError);
    });

    it('fireAndForget, broadcast, queueStatus, deadLetters and replayDeadLetters reject with NotConnectedError naming the operation, never a Redis key', async () => {
      const worker = await client('closed-q');
      worker.handle('job', () => undefined);
      await worker.connect();
      const caller = await client('closed-q-caller', { queues: { consume: false } });
      await caller.connect();
      await caller.fireAndForget('closed-q', 'job', 1);
      await caller.close();
      const expected: Array<[string, () => Promise<unknown>, string]> = [
        ['fireAndForget', () => caller.fireAndForget('closed-q', 'job', 2), 'cannot send a FIRE_AND_FORGET query to "closed-q"'],
        ['broadcast', () => caller.broadcast('closed-q', 'job', 2), 'cannot send a BROADCAST query to "closed-q"'],
        ['queueStatus', () => caller.queueStatus('closed-q'), 'cannot inspect the queues of "closed-q"'],
        ['deadLetters', () => caller.deadLetters('closed-q'), 'cannot read the dead letters of "closed-q"'],
        ['replayDeadLetters', () => caller.replayDeadLetters('closed-q'), 'cannot replay the dead letters of "closed-q"'],
      ];
      for (const [what, call, message] of expected) {
        const error = await rejection(call());
        expect(error, what).to.be.instanceOf(NotConnectedError);
        expect(error.message, what).to.equal(`${message}: the client is closed; create a new client`);
        expect(error.message, what).not.to.include('ic:');
      }
    });
  });

  describe('bad arguments of the request and dead-letter API', () => {
    it('a signal that is no AbortSignal: ValidationError naming signal (sendSync and send reject, sendAsync throws like any bad option)', async () => {
      const worker = await client('sig-worker');
      worker.handle('job', () => 1);
      await worker.connect();
      for (const signal of [{}, 'x', 5, null, { aborted: false, addEventListener: () => undefined }]) {
        const syncError = await rejection(worker.sendSync('sig-worker', 'job', {}, { signal: signal as never }));
        expect(syncError).to.be.instanceOf(ValidationError);
        expect(syncError.message).to.match(/^signal must be an AbortSignal; received /);
        expect(() => worker.sendAsync('sig-worker', 'job', {}, { signal: signal as never })).to.throw(ValidationError, /^signal must be an AbortSignal/);
        expect(await rejection(worker.send('ASYNC' as never, 'sig-worker', 'job', {}, { signal: signal as never }))).to.be.instanceOf(ValidationError);
      }
      expect(await worker.sendSync('sig-worker', 'job', {}, { signal: new AbortController().signal })).to.equal(1);
    });

    it('deadLetters refuses a count that is not an integer from 1 to 100000 with ValidationError (no ReplyError, no RedisUnavailableError), on a store that holds letters', async () => {
      const worker = await client('dl-worker', { queues: { maxAttempts: 1 } });
      worker.handle('job', () => {
        throw new Error('always');
      });
      await worker.connect();
      await worker.fireAndForget('dl-worker', 'job', 1);
      await until(async () => (await worker.deadLetters('dl-worker')).length === 1, 10_000, 'one dead letter');
      for (const count of [0, -1, 1.5, 'x', '5', NaN, Infinity, 100_001, null]) {
        const error = await rejection(worker.deadLetters('dl-worker', count as number));
        expect(error, String(count)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/^count must be an integer from 1 to 100000; received /);
      }
      expect(await worker.deadLetters('dl-worker', 100_000)).to.have.length(1);

      for (const ids of ['abc', 5, {}, [5], ['ok', null]]) {
        const error = await rejection(worker.replayDeadLetters('dl-worker', ids as never));
        expect(error, JSON.stringify(ids)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/^ids must be an array of dead-letter ids \(strings\); received /);
      }
      expect(await rejection(worker.replayDeadLetters('dl-worker', undefined, 'no' as never))).to.be.instanceOf(ValidationError);
      expect(await worker.deadLetters('dl-worker')).to.have.length(1); // nothing replayed by the refused calls
      expect(await worker.replayDeadLetters('dl-worker', [])).to.equal(0);
    });
  });

  describe('ms options that feed a timer or a blocking read', () => {
    const MAX = 2_147_483_647;
    const url = (): string => redis().url;
    const refusals: Array<[string, () => unknown, RegExp]> = [
      ['queues.visibilityTimeoutMs', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { visibilityTimeoutMs: 1e10 } }), /^queues\.visibilityTimeoutMs must be at most 2147483647 ms \(the longest Node\.js timer\); received 10000000000$/],
      ['queues.visibilityTimeoutMs just past', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { visibilityTimeoutMs: MAX + 1 } }), /^queues\.visibilityTimeoutMs must be at most 2147483647 ms/],
      ['queues.blockMs', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { blockMs: 1e10 } }), /^queues\.blockMs must be at most 5000 ms \(.*close\(\).*\); received 10000000000$/],
      ['queues.blockMs just past', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { blockMs: 5001 } }), /^queues\.blockMs must be at most 5000 ms/],
      ['queues.sendWaitMs', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { sendWaitMs: MAX + 1 } }), /^queues\.sendWaitMs must be at most 2147483647 ms/],
      ['closeTimeoutMs', () => new RedisRPCClient({ service: 'b', redis: url(), closeTimeoutMs: 1e12 }), /^closeTimeoutMs must be at most 2147483647 ms/],
      ['queryGraceMs', () => new RedisRPCClient({ service: 'b', redis: url(), queryGraceMs: 1e12 }), /^queryGraceMs must be at most 2147483647 ms/],
      ['probeIntervalMs', () => new RedisRPCClient({ service: 'b', redis: url(), probeIntervalMs: 1e12 }), /^probeIntervalMs must be at most 2147483647 ms/],
      ['connectTimeoutMs', () => new RedisRPCClient({ service: 'b', redis: url(), connectTimeoutMs: 1e12 }), /^connectTimeoutMs must be at most 2147483647 ms/],
      ['registry.heartbeatMs', () => new RedisRPCClient({ service: 'b', redis: url(), registry: { heartbeatMs: 1e12, ttlMs: 2e12 } }), /^registry\.heartbeatMs must be at most 2147483647 ms/],
      ['durability.timeoutMs', () => new RedisRPCClient({ service: 'b', redis: url(), durability: { replicas: 0, timeoutMs: 1e12 } }), /^durability\.timeoutMs must be at most 2147483647 ms/],
      ['queues.visibilityTimeoutMs 0', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { visibilityTimeoutMs: 0 } }), /^queues\.visibilityTimeoutMs must be a positive integer; received 0$/],
      ['queues.blockMs 1.5', () => new RedisRPCClient({ service: 'b', redis: url(), queues: { blockMs: 1.5 } }), /^queues\.blockMs must be a positive integer; received 1\.5$/],
    ];
    for (const [what, build, message] of refusals) {
      it(`${what}: refused with a ValidationError naming it and the value`, () => {
        let error: unknown;
        try {
          build();
        } catch (thrown) {
          error = thrown;
        }
        expect(error).to.be.instanceOf(ValidationError);
        expect((error as Error).message).to.match(message);
      });
    }

    it('at their bounds they work: no TimeoutOverflowWarning, no busy renewal loop, and close() is not held past blockMs', async () => {
      const warnings: string[] = [];
      const onWarning = (warning: Error): void => void warnings.push(`${warning.name}: ${warning.message}`);
      process.on('warning', onWarning);
      try {
        const processed: number[] = [];
        const worker = await client('bounds', { queues: { visibilityTimeoutMs: MAX, blockMs: 5000, sendWaitMs: MAX }, closeTimeoutMs: MAX, queryGraceMs: MAX });
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => (release = resolve));
        worker.handle('job', async ({ n }: { n: number }) => {
          processed.push(n);
          if (n === 0) await held; // a query in progress: its claim is renewed on the timer
        });
        await worker.connect();
        await worker.fireAndForget('bounds', 'job', { n: 0 });
        await until(() => processed.length === 1, 10_000, 'the first query started');
        const admin = new Redis(redis().url);
        const commands = async (): Promise<number> => Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))?.[1]);
        const before = await commands();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const idle = (await commands()) - before;
        admin.disconnect();
        release();
        await worker.fireAndForget('bounds', 'job', { n: 1 });
        await until(() => processed.length === 2, 10_000, 'the second query processed');
        // a renewal period past the longest timer fired every millisecond: thousands of commands
        expect(idle).to.be.below(50);
        // the consumers now sit in a 5000 ms BLOCK: close() waits for it at most that long
        const started = Date.now();
        await worker.close();
        expect(Date.now() - started).to.be.below(6000);
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings.filter((w) => w.startsWith('TimeoutOverflowWarning'))).to.deep.equal([]);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });
});
