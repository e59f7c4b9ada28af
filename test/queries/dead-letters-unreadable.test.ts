/**
 * One dead letter that cannot be read never makes the store unreadable:
 * deadLetters, replayDeadLetters and `intracom dead-letters list` report it
 * as `unreadable` (its bytes, why) and list and replay the others. A foreign
 * query holding a timestamp beyond a Date's range (which used to come back
 * as an Invalid Date and be re-encoded into its letter as `d4 ff ff`) is a
 * `malformed` letter with the bytes received.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { MsgpackCodec, PROTOCOL_VERSION } from '../../src/envelope/codec';
import { createQuery } from '../../src/envelope/query';
import { QueryType } from '../../src/envelope/types';
import { IntracomError } from '../../src/errors/IntracomError';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { startRedis, type TestRedis } from '../support/redis-server';
import { until } from '../support/async';
import { runCli } from '../cli/run';

describe('dead letters that cannot be read (redis)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis.stop());

  it('are listed as unreadable with their bytes, and the others are still listed and replayed (API and CLI)', async () => {
    const service = 'deadread';
    const settings = { redis: redis.url, namespace: redis.namespace, queues: { blockMs: 50, maxAttempts: 1, visibilityTimeoutMs: 1000 } };
    const worker = new RedisRPCClient({ service, ...settings });
    const raw = new Redis(redis.url);
    let healthy = false;
    const handled: unknown[] = [];
    worker.handle('flaky', (query) => {
      if (!healthy) throw new Error('not yet');
      handled.push(query);
    });
    await worker.connect();
    try {
      const { names } = worker.client;
      const sent = await worker.fireAndForget(service, 'flaky', { order: 1 });
      await until(async () => (await worker.deadLetters(service)).length === 1, 10_000, 'the legitimate letter');

      // a foreign query whose parameters hold a timestamp 2^62 seconds from 1970 (ext -1, 12 bytes)
      const codec = new MsgpackCodec();
      const envelope = createQuery({ serviceNameSource: 'py', serviceNameDest: service, type: QueryType.FIRE_AND_FORGET, action: 'flaky', timeout_ms: 0 });
      const placeholder = codec.encode('PLACEHOLDER');
      const timestamp = Buffer.alloc(15);
      timestamp.set([0xc7, 12, 0xff]);
      timestamp.writeBigInt64BE(2n ** 62n, 7);
      const frame = Buffer.from(codec.encode([PROTOCOL_VERSION, { ...envelope, query: 'PLACEHOLDER' }]));
      const at = frame.indexOf(placeholder);
      const foreign = Buffer.concat([frame.subarray(0, at), timestamp, frame.subarray(at + placeholder.length)]);
      await raw.xadd(names.queryStream(service), '*', 'm', foreign);
      await until(async () => (await worker.deadLetters(service)).length === 2, 10_000, 'the foreign query dead-lettered');

      // letters the store holds but no intracom wrote: what an older version wrote, or an edit in Redis
      const undecodable = Buffer.from('81a6726561736f6ed4ffff', 'hex'); // { reason: <a 1-byte timestamp> }
      const notALetter = codec.encode([1, 2, 3]);
      const badQuery = codec.encode({ reason: 'no-handler', detail: 'x', query: { queryId: 'q' }, raw: null, stream: 's', entryId: '1-0', attempts: 1, failedAt: 0, lastError: null });
      for (const bytes of [undecodable, notALetter, badQuery]) await raw.xadd(names.deadLetters(service), '*', 'm', bytes);

      const letters = await worker.deadLetters(service);
      expect(letters.map((l) => l.reason)).to.deep.equal(['max-attempts', 'malformed', 'unreadable', 'unreadable', 'unreadable']);
      expect(letters[0].query?.queryId).to.equal(sent.queryId);
      expect(letters[1].detail).to.match(/beyond the range of a JavaScript Date/);
      expect(letters[1].query).to.equal(null);
      expect(Buffer.compare(letters[1].raw as Buffer, foreign)).to.equal(0);
      const [undecodableLetter, notALetterLetter, badQueryLetter] = letters.slice(2);
      expect(undecodableLetter.detail).to.match(/^this dead letter cannot be read: it does not decode \(a timestamp of 1 bytes/);
      expect(Buffer.compare(undecodableLetter.raw as Buffer, undecodable)).to.equal(0);
      expect(undecodableLetter).to.include({ query: null, rawBytes: undecodable.length, stream: names.deadLetters(service), entryId: undecodableLetter.id, attempts: 0, lastError: null });
      expect(undecodableLetter.failedAt).to.equal(Number(undecodableLetter.id.split('-')[0]));
      expect(notALetterLetter.detail).to.match(/it is not a map/);
      expect(badQueryLetter.detail).to.match(/its query is not one/);

      const list = await runCli(['--redis', redis.url, '--namespace', redis.namespace, 'dead-letters', 'list', service]);
      expect(list.code, list.stderr).to.equal(0);
      expect(list.stdout).to.match(/^5 dead letters for deadread/);
      expect(list.stdout.match(/unreadable/g)).to.have.length(3);
      const listJson = await runCli(['--redis', redis.url, '--namespace', redis.namespace, 'dead-letters', 'list', service, '--json']);
      expect(listJson.code, listJson.stderr).to.equal(0);
      expect((JSON.parse(listJson.stdout) as Array<{ reason: string }>).map((l) => l.reason)).to.deep.equal(letters.map((l) => l.reason));

      healthy = true;
      expect(await worker.replayDeadLetters(service)).to.equal(1);
      await until(() => handled.length === 1, 10_000, 'the replayed query handled');
      expect(handled).to.deep.equal([{ order: 1 }]);
      expect((await worker.deadLetters(service)).map((l) => l.reason)).to.deep.equal(['malformed', 'unreadable', 'unreadable', 'unreadable']);
    } catch (error) {
      // every error the library throws is one of its classes
      if (!(error instanceof IntracomError) && (error as Error).name !== 'AssertionError') expect.fail(`a plain ${(error as Error).name}: ${(error as Error).message}`);
      throw error;
    } finally {
      raw.disconnect();
      await worker.close();
    }
  });
});
