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
});
