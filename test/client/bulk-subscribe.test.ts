/**
 * Subscribing many topics at once (issue 18): the subscriptions of one tick
 * leave as SUBSCRIBE commands of at most MAX_NAMES_PER_CALL channels each,
 * far below Redis's limit on a command's arguments, and a refusal of some
 * names by the ACL (Redis refuses a whole command for one name it leaves
 * out) costs only the refused ones: the others subscribe, each refused one
 * rejects with PermissionError naming its channel.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { PermissionError, ValidationError } from '../../src/errors/index';
import { MAX_NAMES_PER_CALL } from '../../src/route/SubscriptionTable';
import { rejection, until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

const quiet = pino({ level: 'silent' });

/** Calls of a command so far, from INFO commandstats. */
async function calls(admin: Redis, command: string): Promise<number> {
  const stats = await admin.info('commandstats');
  return Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
}

describe('subscribing many topics at once', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let admin: Redis;
  let ns: string;
  const closing: RedisClient[] = [];

  before(async () => {
    redis = await startRedis({ private: true });
    ns = redis.namespace;
    admin = new Redis(redis.url);
    // allowed.* and the client's own intracom channels only; PSUBSCRIBE needs a rule equal to its pattern
    await admin.call('ACL', 'SETUSER', 'partial', 'on', '>pw', `~${ns}:*`, 'resetchannels', `&${ns}:intracom.*`, `&${ns}:allowed.*`, `&${ns}:other.*`, '+@all');
  });
  afterEach(async () => {
    for (const client of closing.splice(0)) await client.close();
  });
  after(async () => {
    admin.disconnect();
    await redis.stop();
  });

  const client = async (url = redis.url) => {
    const made = new RedisClient({ service: 'bulk', redis: url, namespace: ns, logger: quiet });
    closing.push(made);
    await made.connect();
    return made;
  };

  it('a batch over the per-command limit leaves as ceil(K / limit) SUBSCRIBEs (and UNSUBSCRIBEs), and every topic delivers', async () => {
    const subscriber = await client();
    const publisher = await client();
    const count = 2 * MAX_NAMES_PER_CALL + 452;
    const topics = Array.from({ length: count }, (_, i) => `allowed.bulk.${i}`);
    const heard = new Map<string, unknown>();
    const subscribesBefore = await calls(admin, 'subscribe');
    const stops = await Promise.all(topics.map((topic) => subscriber.subscribe(topic, (payload) => void heard.set(topic, payload))));
    expect((await calls(admin, 'subscribe')) - subscribesBefore).to.equal(Math.ceil(count / MAX_NAMES_PER_CALL));
    const numsub = (await admin.call('PUBSUB', 'NUMSUB', ...topics.map((topic) => `${ns}:${topic}`))) as Array<string | number>;
    expect(numsub.filter((_, i) => i % 2 === 1).every((n) => Number(n) === 1)).to.equal(true);
    const probes = [0, MAX_NAMES_PER_CALL - 1, MAX_NAMES_PER_CALL, count - 1];
    for (const i of probes) expect(await publisher.publish(topics[i], { i })).to.equal(1);
    await until(() => probes.every((i) => heard.has(topics[i])), 5000, 'the probes');
    for (const i of probes) expect(heard.get(topics[i])).to.deep.equal({ i });
    const unsubscribesBefore = await calls(admin, 'unsubscribe');
    await Promise.all(stops.map((stop) => stop()));
    expect((await calls(admin, 'unsubscribe')) - unsubscribesBefore).to.equal(Math.ceil(count / MAX_NAMES_PER_CALL));
    expect(await publisher.publish(topics[0], { late: true })).to.equal(0);
  });

  it('one topic of a batch refused by the ACL: the others subscribe and deliver, the refused one rejects with PermissionError naming its channel', async () => {
    const url = new URL(redis.url);
    const subscriber = await client(`redis://partial:pw@${url.host}`);
    const publisher = await client();
    const topics = Array.from({ length: 300 }, (_, i) => (i === 137 ? 'secret.one' : `allowed.mixed.${i}`));
    const heard = new Set<string>();
    const outcomes = await Promise.allSettled(topics.map((topic) => subscriber.subscribe(topic, () => void heard.add(topic))));
    const refused = outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [[i, outcome.reason as Error] as const] : []));
    expect(refused.map(([i]) => i)).to.deep.equal([137]);
    const error = refused[0][1];
    expect(error, String(error)).to.be.instanceOf(PermissionError);
    expect((error as PermissionError).operation).to.equal(`subscribe to "${ns}:secret.one"`);
    expect(((error as Error).cause as Error).message).to.match(/^NOPERM/);
    for (const i of [0, 136, 138, 299]) expect(await publisher.publish(topics[i], { i })).to.equal(1);
    await until(() => [0, 136, 138, 299].every((i) => heard.has(topics[i])), 5000, 'the allowed topics');
    expect(await publisher.publish('secret.one', {})).to.equal(0);
    // a refused topic is not kept: asking again is refused again, and the allowed ones stay subscribed
    expect(await Promise.allSettled([subscriber.subscribe('secret.one', () => undefined), subscriber.subscribe('allowed.more', () => undefined)]).then((r) => r.map((o) => o.status))).to.deep.equal(['rejected', 'fulfilled']);
    expect(await publisher.publish(topics[0], { again: true })).to.equal(1);
  });

  it('several refused topics and patterns in one tick: only those reject, each with its own channel or pattern', async () => {
    const url = new URL(redis.url);
    const subscriber = await client(`redis://partial:pw@${url.host}`);
    const refusedTopics = new Set([3, 64, 65, 511, 1023, 1500]);
    const topics = Array.from({ length: 1600 }, (_, i) => (refusedTopics.has(i) ? `secret.t${i}` : `allowed.many.${i}`));
    const patterns = ['allowed.*', 'secret.p.*', 'other.*'];
    const [channelOutcomes, patternOutcomes] = await Promise.all([
      Promise.allSettled(topics.map((topic) => subscriber.subscribe(topic, () => undefined))),
      Promise.allSettled(patterns.map((pattern) => subscriber.psubscribe(pattern, () => undefined))),
    ]);
    const rejected = channelOutcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [i] : []));
    expect(rejected).to.deep.equal([...refusedTopics]);
    for (const i of rejected) {
      const reason = (channelOutcomes[i] as PromiseRejectedResult).reason as PermissionError;
      expect(reason).to.be.instanceOf(PermissionError);
      expect(reason.operation).to.equal(`subscribe to "${ns}:secret.t${i}"`);
    }
    expect(patternOutcomes.map((outcome) => outcome.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect(((patternOutcomes[1] as PromiseRejectedResult).reason as PermissionError).operation).to.equal(`psubscribe to "${ns}:secret.p.*"`);
    const numsub = (await admin.call('PUBSUB', 'NUMSUB', ...topics.map((topic) => `${ns}:${topic}`))) as Array<string | number>;
    const subscribed = topics.filter((_, i) => Number(numsub[2 * i + 1]) === 1).length;
    expect(subscribed).to.equal(topics.length - refusedTopics.size);
  });

  describe('subscribeMany', () => {
    it('one call of K topics leaves as ceil(K / limit) SUBSCRIBEs, delivers every topic to the one handler with its topic, and one unsubscribe ends them all', async () => {
      const subscriber = await client();
      const publisher = await client();
      const count = 2 * MAX_NAMES_PER_CALL + 452;
      const topics = Array.from({ length: count }, (_, i) => `allowed.many.${i}`);
      const heard = new Map<string, unknown>();
      const subscribesBefore = await calls(admin, 'subscribe');
      const stop = await subscriber.subscribeMany([...topics, topics[5]], (payload, event) => void heard.set(event.topic, payload));
      expect((await calls(admin, 'subscribe')) - subscribesBefore).to.equal(Math.ceil(count / MAX_NAMES_PER_CALL));
      const numsub = (await admin.call('PUBSUB', 'NUMSUB', ...topics.map((topic) => `${ns}:${topic}`))) as Array<string | number>;
      expect(numsub.filter((_, i) => i % 2 === 1).every((n) => Number(n) === 1)).to.equal(true);
      const probes = [0, 5, MAX_NAMES_PER_CALL - 1, MAX_NAMES_PER_CALL, count - 1];
      for (const i of probes) expect(await publisher.publish(topics[i], { i })).to.equal(1);
      await until(() => probes.every((i) => heard.has(topics[i])), 5000, 'the probes');
      for (const i of probes) expect(heard.get(topics[i])).to.deep.equal({ i });
      expect(heard.size).to.equal(probes.length);
      const unsubscribesBefore = await calls(admin, 'unsubscribe');
      await stop();
      expect((await calls(admin, 'unsubscribe')) - unsubscribesBefore).to.equal(Math.ceil(count / MAX_NAMES_PER_CALL));
      expect(await publisher.publish(topics[0], { late: true })).to.equal(0);
    });

    it('one topic refused by the ACL: all or nothing, the call rejects with PermissionError naming that channel and none of its topics is still subscribed when it does', async () => {
      const url = new URL(redis.url);
      const subscriber = await client(`redis://partial:pw@${url.host}`);
      const topics = Array.from({ length: 1500 }, (_, i) => (i === 1100 ? 'secret.many' : `allowed.undone.${i}`));
      // a topic subscribed before by `subscribe` stays: only what the call added is undone
      const kept = await subscriber.subscribe(topics[0], () => undefined);
      const error = await subscriber.subscribeMany(topics, () => undefined).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error, String(error)).to.be.instanceOf(PermissionError);
      expect((error as PermissionError).operation).to.equal(`subscribe to "${ns}:secret.many"`);
      expect(((error as Error).cause as Error).message).to.match(/^NOPERM/);
      const channels = topics.map((topic) => `${ns}:${topic}`);
      const numsub = (await admin.call('PUBSUB', 'NUMSUB', ...channels)) as Array<string | number>;
      expect(numsub.filter((_, i) => i % 2 === 1).reduce<number>((sum, n) => sum + Number(n), 0)).to.equal(1);
      expect(Number(((await admin.call('PUBSUB', 'NUMSUB', channels[0])) as Array<string | number>)[1])).to.equal(1);
      // the allowed topics subscribe again in a later call
      const stop = await subscriber.subscribeMany(topics.filter((_, i) => i !== 1100), () => undefined);
      await stop();
      await kept();
    });

    it('refuses a bad topic list or handler with ValidationError naming it, before anything is subscribed', async () => {
      const subscriber = await client();
      const subscribesBefore = await calls(admin, 'subscribe');
      const refusals = await Promise.allSettled([
        subscriber.subscribeMany('allowed.one' as unknown as string[], () => undefined),
        subscriber.subscribeMany(['allowed.a', '', 'allowed.b'], () => undefined),
        subscriber.subscribeMany(['allowed.a', 7 as unknown as string], () => undefined),
        subscriber.subscribeMany(['allowed.a'], 'handler' as unknown as () => void),
        subscriber.subscribeMany(['allowed.a'], () => undefined, { maxInFlight: 0 }),
      ]);
      const messages = refusals.map((outcome) => {
        expect(outcome.status).to.equal('rejected');
        const reason = (outcome as PromiseRejectedResult).reason as Error;
        expect(reason).to.be.instanceOf(ValidationError);
        return reason.message;
      });
      expect(messages[0]).to.match(/^topics must be an array of non-empty strings; received/);
      expect(messages[1]).to.match(/^topics\[1\] must be a non-empty string; received/);
      expect(messages[2]).to.match(/^topics\[1\] must be a non-empty string; received/);
      expect(messages[3]).to.match(/^the handler of subscribeMany of 1 topics must be a function/);
      expect(messages[4]).to.match(/maxInFlight/);
      expect((await calls(admin, 'subscribe')) - subscribesBefore).to.equal(0);
    });

    it('bounds the handlers of all its topics together by maxInFlight (one subscription)', async () => {
      const subscriber = await client();
      const publisher = await client();
      const release: Array<() => void> = [];
      const stop = await subscriber.subscribeMany(['allowed.bound.a', 'allowed.bound.b'], () => new Promise<void>((resolve) => release.push(resolve)), { maxInFlight: 1 });
      await publisher.publish('allowed.bound.a', 1);
      await until(() => release.length === 1, 5000, 'the first handler');
      await publisher.publish('allowed.bound.b', 2);
      await until(() => subscriber.stats().shed === 1, 5000, 'the second event shed');
      for (const settle of release) settle();
      await stop();
    });
  });

  it('a topic with a lone surrogate (Redis would receive U+FFFD: two topics one channel, events never delivered) is refused with a ValidationError by subscribe, subscribeMany (naming the element, nothing subscribed) and publish', async () => {
    const c = await client();
    const before = ((await admin.call('PUBSUB', 'NUMSUB', `${ns}:s.\ufffd`)) as [string, number])[1];
    const handler = (): void => undefined;
    expect(await rejection(c.subscribe('s.\ud800', handler))).to.be.instanceOf(ValidationError).with.property('message').that.matches(/^topic must be well-formed Unicode \(no lone surrogate/);
    const many = await rejection(c.subscribeMany(['s.ok', 's.\udc00'], handler));
    expect(many).to.be.instanceOf(ValidationError);
    expect(many.message).to.match(/^topics\[1\] must be well-formed Unicode/);
    expect(() => c.publishAndForget('s.\ud800', 1)).to.throw(ValidationError, /well-formed Unicode/);
    expect(await rejection(c.publish('s.\udc00x', 1))).to.be.instanceOf(ValidationError);
    expect(((await admin.call('PUBSUB', 'NUMSUB', `${ns}:s.\ufffd`, `${ns}:s.ok`)) as [string, number, string, number]).filter((_, i) => i % 2 === 1), 'nothing subscribed').to.deep.equal([before, 0]);
    // a well-formed pair (an emoji) still names its channel
    const got: unknown[] = [];
    await c.subscribe('s.\ud83d\ude00', (payload) => void got.push(payload));
    await c.publish('s.\ud83d\ude00', 'smile');
    await until(() => got.length === 1, 5000, 'the event on a topic with an emoji');
  });
});
