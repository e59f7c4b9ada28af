/**
 * The subscribing side of the `subscribe-10k` benchmark, in a fresh process
 * per measurement. BENCH_SYSTEM=intracom subscribes BENCH_TOPICS topics with
 * RedisClient.subscribe, all in one tick; BENCH_SYSTEM=intracom-many with one
 * RedisClient.subscribeMany of them all; BENCH_SYSTEM=baseline sends one
 * ioredis SUBSCRIBE of every channel. Then it unsubscribes them all the same
 * way. Reports the time each took, the CPU subscribing used (on a loaded
 * machine, the figure that waiting for a core does not inflate), and the heap
 * and RSS after a full garbage collection, before and after subscribing.
 *
 * Answers `{ ev: 'subscribed', subscribeMs, subscribeCpuMs, heapBefore,
 * heapAfter, rssBefore, rssAfter }` once subscribed, then on `{ cmd: 'unsubscribe' }` answers
 * `{ ev: 'unsubscribed', unsubscribeMs }`.
 */
import Redis from 'ioredis';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RedisClient } from '../../../src/client/RedisClient';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const count = Number(process.env.BENCH_TOPICS ?? 10_000);
const send = (message: unknown): void => void process.send?.(message);

function memory(): { heap: number; rss: number } {
  gc();
  gc();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, rss: usage.rss };
}

/** One handler for every topic (the user's code, not intracom's, so not a closure per topic). */
function ignore(): void {}

async function main(): Promise<void> {
  const topics = Array.from({ length: count }, (_, i) => `bench.bulk.${system}.${i}`);
  let subscribe: () => Promise<() => Promise<unknown>>;
  if (system === 'intracom') {
    const client = new RedisClient({ service: 'bench-bulk', redis: url, namespace });
    await client.connect();
    subscribe = async () => {
      const stops = await Promise.all(topics.map((topic) => client.subscribe(topic, ignore)));
      return () => Promise.all(stops.map((stop) => stop()));
    };
  } else if (system === 'intracom-many') {
    const client = new RedisClient({ service: 'bench-bulk', redis: url, namespace });
    await client.connect();
    subscribe = () => client.subscribeMany(topics, ignore);
  } else {
    const subscriber = new Redis(url);
    subscriber.on('messageBuffer', () => undefined);
    await subscriber.ping();
    const channels = topics.map((topic) => `${namespace}:${topic}`);
    subscribe = async () => {
      await subscriber.subscribe(...channels);
      return () => subscriber.unsubscribe(...channels);
    };
  }
  const before = memory();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const unsubscribe = await subscribe();
  const subscribeMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const subscribeCpuMs = (cpu.user + cpu.system) / 1000;
  const after = memory();
  send({ ev: 'subscribed', subscribeMs, subscribeCpuMs, heapBefore: before.heap, heapAfter: after.heap, rssBefore: before.rss, rssAfter: after.rss });
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd !== 'unsubscribe') return;
    const begun = performance.now();
    void unsubscribe().then(() => send({ ev: 'unsubscribed', unsubscribeMs: performance.now() - begun }));
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
