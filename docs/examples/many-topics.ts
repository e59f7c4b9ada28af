/**
 * Subscribing thousands of topics at once: one `subscribeMany` call, one
 * handler that reads the topic from the event, one unsubscribe for all of
 * them. A dashboard that follows 5,000 devices subscribes them in one call
 * (five SUBSCRIBE commands of at most 1,024 channels each on Redis).
 *
 * Run: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/many-topics.ts`
 * (without REDIS_URL it runs on the memory route). @runs-without-redis
 */
import { RedisClient } from 'intracom';

export async function main(redisUrl = process.env.REDIS_URL): Promise<void> {
  const connection = redisUrl ? { redis: redisUrl } : { route: 'memory' as const };
  console.log(`route: ${redisUrl ? 'redis' : 'memory'}`);
  const dashboard = new RedisClient({ service: 'dashboard', ...connection });
  const devices = new RedisClient({ service: 'devices', ...connection });
  await Promise.all([dashboard.connect(), devices.connect()]);
  try {
    const ids = Array.from({ length: 5000 }, (_, i) => `d${i}`);
    const last = new Map<string, unknown>();
    let heard = (): void => undefined;
    const allHeard = new Promise<void>((resolve) => (heard = resolve));
    const stop = await dashboard.subscribeMany(
      ids.map((id) => `device.${id}.events`),
      (reading: { celsius: number }, event) => {
        last.set(event.topic, reading.celsius);
        if (last.size === 3) heard();
      },
      { maxInFlight: 100 }, // for all 5,000 topics together: it is one subscription
    );
    console.log(`subscribed ${ids.length} topics`);
    for (const id of ['d0', 'd2500', 'd4999']) await devices.publish(`device.${id}.events`, { celsius: 20 + Number(id.slice(1)) / 1000 });
    await allHeard;
    for (const [topic, celsius] of last) console.log(`${topic}: ${celsius} °C`);
    await stop(); // every topic of the call
    console.log(`after stop, receivers of device.d0.events: ${await devices.publish('device.d0.events', { celsius: 0 })}`);
  } finally {
    await Promise.all([dashboard.close(), devices.close()]);
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
