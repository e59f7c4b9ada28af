/**
 * The memory route's pattern matching is Redis's: a differential property
 * against a real redis-server (PUBSUB CHANNELS applies the same
 * stringmatchlen as PSUBSCRIBE delivery) over generated patterns and channels
 * made of the bytes that matter, and the issue's bracket patterns delivered
 * through both routes. A pattern never throws and never disturbs anyone else.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import Redis from 'ioredis';
import { RedisClient } from '../../src/client/RedisClient';
import { ValidationError } from '../../src/errors/index';
import { globMatch } from '../../src/route/glob';
import { rejection, until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';
import { onEachRoute } from '../support/routes';

/** Bytes with a meaning to the matcher, some plain ones, NUL and bytes >= 0x80 (signed in C). */
const ALPHABET = [...Buffer.from('ab z-^]\\[*?!')].concat([0x00, 0x7f, 0x80, 0xc3, 0xe9, 0xff]);
const bytes = (max: number) => fc.array(fc.constantFrom(...ALPHABET), { minLength: 1, maxLength: max }).map((a) => Buffer.from(a));
/** The bracket patterns the old RegExp translation got wrong (issue 11). */
const ISSUE_PATTERNS = ['[]a]', 'a[bc', '[a\\-z]', '[a-]', '[\\]]', '[z-a]', '[^]a]', '[a'];
const ISSUE_CHANNELS = [']', 'a', 'b', 'c', 'ab', 'a[bc', 'abc', '-', 'z', 'q', '\\', '[', '^', '_', 'A', 'Z', 'aa'];

describe('glob matching against a real Redis', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let subscriber: Redis;
  let command: Redis;
  before(async () => {
    redis = await startRedis();
    subscriber = new Redis(redis.url);
    command = new Redis(redis.url);
  });
  after(async () => {
    subscriber.disconnect();
    command.disconnect();
    await redis.stop();
  });

  /** The subjects among `subjects` that Redis matches with `pattern`. */
  async function redisMatches(pattern: Buffer, subjects: Buffer[]): Promise<Set<string>> {
    const found = (await command.callBuffer('PUBSUB', 'CHANNELS', pattern)) as Buffer[];
    const ours = new Set(subjects.map((s) => s.toString('hex')));
    return new Set(found.map((b) => b.toString('hex')).filter((hex) => ours.has(hex)));
  }

  it('matches every generated pattern and channel byte for byte as Redis does (fast-check, PUBSUB CHANNELS)', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(8), fc.uniqueArray(bytes(6), { minLength: 1, maxLength: 24, selector: (b) => b.toString('hex') }), async (pattern, channels) => {
        await subscriber.subscribe(...channels);
        try {
          const expected = await redisMatches(pattern, channels);
          const actual = new Set(channels.filter((c) => globMatch(pattern, c)).map((c) => c.toString('hex')));
          expect([...actual].sort(), `pattern ${JSON.stringify(pattern.toString('latin1'))}`).to.deep.equal([...expected].sort());
        } finally {
          await subscriber.unsubscribe(...channels);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("agrees with Redis on the issue's bracket patterns", async () => {
    const channels = ISSUE_CHANNELS.map((c) => Buffer.from(c));
    await subscriber.subscribe(...channels);
    try {
      for (const pattern of ISSUE_PATTERNS) {
        const expected = await redisMatches(Buffer.from(pattern), channels);
        const actual = new Set(channels.filter((c) => globMatch(pattern, c)).map((c) => c.toString('hex')));
        expect([...actual].sort(), pattern).to.deep.equal([...expected].sort());
      }
    } finally {
      await subscriber.unsubscribe(...channels);
    }
  });

  it('compares bytes in a range as C chars, as the Redis build does (0x80 and above are below "A")', async () => {
    const channels = [Buffer.from('b'), Buffer.from('A'), Buffer.from([0xe9]), Buffer.from([0x7f])];
    await subscriber.subscribe(...channels);
    try {
      for (const pattern of [Buffer.from('[a-\xff]', 'latin1'), Buffer.from('[\x80-A]', 'latin1'), Buffer.from('[^\xe9-b]', 'latin1'), Buffer.from('?', 'latin1')]) {
        const expected = await redisMatches(pattern, channels);
        const actual = new Set(channels.filter((c) => globMatch(pattern, c)).map((c) => c.toString('hex')));
        expect([...actual].sort(), pattern.toString('hex')).to.deep.equal([...expected].sort());
      }
    } finally {
      await subscriber.unsubscribe(...channels);
    }
  });

  it('never throws, whatever the pattern and the subject', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (pattern, subject) => {
        expect(globMatch(pattern, subject)).to.be.a('boolean');
      }),
      { numRuns: 2000 },
    );
    expect(globMatch('*'.repeat(2000) + 'x', 'a'.repeat(50))).to.equal(false); // nesting limit, as Redis
  });
});

onEachRoute('odd patterns', (options) => {
  it("delivers the issue's bracket patterns as Redis matches them, and none of them disturbs another subscriber or a publisher", async () => {
    const publisher = new RedisClient(options('pub'));
    const watcher = new RedisClient(options('watcher'));
    const bystander = new RedisClient(options('bystander'));
    try {
      await Promise.all([publisher.connect(), watcher.connect(), bystander.connect()]);
      const got: string[] = [];
      for (const pattern of ISSUE_PATTERNS) await watcher.psubscribe(pattern, (_p, event) => void got.push(`${event.pattern} <- ${event.topic}`));
      const plain: unknown[] = [];
      await bystander.subscribe('q', (payload) => void plain.push(payload));
      for (const channel of ISSUE_CHANNELS) expect(await publisher.publish(channel, channel)).to.be.a('number');
      const expected = ISSUE_PATTERNS.flatMap((p) => ISSUE_CHANNELS.filter((c) => globMatch(p, c)).map((c) => `${p} <- ${c}`));
      await until(() => got.length >= expected.length && plain.length === 1, 5000, 'every matching delivery');
      expect(got.sort()).to.deep.equal(expected.sort());
      expect(got).to.include('[z-a] <- q'); // a reversed range is the range, as in Redis (it used to throw on every publish)
      expect(plain).to.deep.equal(['q']);
    } finally {
      await Promise.all([publisher.close(), watcher.close(), bystander.close()]);
    }
  });

  it('refuses a pattern that cannot reach Redis unchanged at psubscribe with a ValidationError, and the others go on', async () => {
    const client = new RedisClient(options('refuser'));
    try {
      await client.connect();
      for (const bad of ['', 'a\ud800b', 42 as unknown as string]) {
        const error = await rejection(client.psubscribe(bad, () => undefined));
        expect(error, String(bad)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/pattern must be/);
        expect(await rejection(client.route.psubscribe(bad, () => undefined))).to.be.instanceOf(ValidationError);
      }
      const got: unknown[] = [];
      await client.psubscribe('ok.*', (payload) => void got.push(payload));
      await client.publish('ok.1', 'fine');
      await until(() => got.length === 1, 5000, 'the event');
    } finally {
      await client.close();
    }
  });
});
