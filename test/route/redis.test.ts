import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisRoute } from '../../src/route/RedisRoute';
import { MAX_NAMES_PER_CALL } from '../../src/route/SubscriptionTable';
import { startRedis } from '../support/redis-server';
import { routeOptions } from './harnesses';
import { routeConformance } from './conformance';
import { targetHarness } from './harnesses';
import { streamConformance } from './stream-conformance';
import { testTargets } from '../support/redis-targets';
import { startProxy } from '../support/proxy';

for (const kind of testTargets()) {
  routeConformance(`redis${kind.suffix}`, () => targetHarness(kind));
  streamConformance(`redis${kind.suffix}`, () => targetHarness(kind));
}

describe('redis route subscriptions', function () {
  this.timeout(20_000);
  it('sends one SUBSCRIBE per MAX_NAMES_PER_CALL channels subscribed in one tick, and one UNSUBSCRIBE likewise', async () => {
    const redis = await startRedis();
    const admin = new Redis(redis.url);
    const route = new RedisRoute(redis.url, routeOptions());
    try {
      await route.connect();
      const calls = async (command: string) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await admin.info('commandstats'))?.[1] ?? 0);
      const [subscribesBefore, unsubscribesBefore] = [await calls('subscribe'), await calls('unsubscribe')];
      const count = 2 * MAX_NAMES_PER_CALL + 1;
      const stops = await Promise.all(Array.from({ length: count }, (_, i) => route.subscribe(`${redis.namespace}.bulk.${i}`, () => undefined)));
      expect((await calls('subscribe')) - subscribesBefore).to.equal(3);
      expect(Number(((await admin.call('PUBSUB', 'NUMSUB', `${redis.namespace}.bulk.${count - 1}`)) as [string, number])[1])).to.equal(1);
      await Promise.all(stops.map((stop) => stop()));
      expect((await calls('unsubscribe')) - unsubscribesBefore).to.equal(3);
    } finally {
      admin.disconnect();
      await route.close();
      await redis.stop();
    }
  });

  it('a last listener unsubscribing still receives the frames Redis sent before it processed the UNSUBSCRIBE (their publishers counted it as a receiver)', async () => {
    const redis = await startRedis();
    // the subscriber's connection goes through a proxy that can hold its bytes: Redis has sent the frames, the client has not read them yet
    const proxy = await startProxy(redis.url);
    const subscriber = new RedisRoute(proxy.url, routeOptions());
    const publisher = new RedisRoute(redis.url, routeOptions());
    const channel = `${redis.namespace}.draining`;
    try {
      await Promise.all([subscriber.connect(), publisher.connect()]);
      const received: unknown[] = [];
      const stop = await subscriber.subscribe(channel, (message) => received.push(message));
      proxy.set('frozen');
      const counts = await Promise.all([1, 2, 3, 4, 5].map((n) => publisher.publish(channel, { n })));
      expect(counts).to.deep.equal([1, 1, 1, 1, 1]);
      const stopped = stop();
      proxy.set('forward');
      await stopped;
      expect(received).to.deep.equal([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
      // once Redis confirmed the unsubscription, nothing reaches it, and a second unsubscribe does nothing
      expect(await publisher.publish(channel, { n: 6 })).to.equal(0);
      await stop();
      expect(received).to.have.length(5);
    } finally {
      await Promise.all([subscriber.close(), publisher.close()]);
      await proxy.close();
      await redis.stop();
    }
  });
});
