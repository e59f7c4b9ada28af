/**
 * The durable and request query API under hostile arguments (review
 * "durable", findings 2, 3, 5, 6): what a receiver would refuse is refused at
 * the call with a ValidationError naming the option and the value, before
 * anything is stored; ms options that feed a timer stay within what a timer
 * takes; after close() every call fails with NotConnectedError naming the
 * operation, never a Redis key, and sendAsync still returns its handle.
 */
import { expect } from 'chai';
import { ValidationError } from '../../src/errors/index';
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
});
