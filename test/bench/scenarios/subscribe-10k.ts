/**
 * Scenario `subscribe-10k`: 10,000 topics subscribed at once by a fresh
 * process, intracom (RedisClient.subscribe per topic, all in one tick),
 * intracom-many (one RedisClient.subscribeMany of every topic) and one
 * ioredis SUBSCRIBE of every channel, three rounds alternating,
 * each in fresh processes. `ops_per_s` is subscriptions per second; also
 * reported: the time to subscribe and to unsubscribe them all, the CPU the
 * subscriber used to subscribe (`subscribe_cpu_ms`), and the
 * memory each subscription costs: the subscriber's heap and RSS after a full
 * GC (`heap_b_per_sub`, `rss_b_per_sub`) and Redis's `used_memory`
 * (`redis_b_per_sub`), from before to after subscribing.
 */
import Redis from 'ioredis';
import { spawnPeer } from '../../support/processes';
import { round, type BenchResult, type Scenario } from '../harness';

type System = 'baseline' | 'intracom' | 'intracom-many';
const SYSTEMS: readonly System[] = ['baseline', 'intracom', 'intracom-many'];
const ROUNDS = 3;

interface Subscribed {
  subscribeMs: number;
  subscribeCpuMs: number;
  heapBefore: number;
  heapAfter: number;
  rssBefore: number;
  rssAfter: number;
}

async function redisMemory(admin: Redis): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1] ?? 0);
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export const scenario: Scenario = {
  name: 'subscribe-10k',
  async run(context) {
    const topics = Math.max(1000, Math.round(10_000 * Math.min(1, context.scale * 10)));
    const admin = new Redis(context.redisUrl);
    const samples: Record<System, Array<Subscribed & { unsubscribeMs: number; redisBytes: number }>> = { baseline: [], intracom: [], 'intracom-many': [] };
    try {
      for (let r = 0; r < ROUNDS; r++) {
        for (const system of SYSTEMS) {
          const peer = spawnPeer('test/bench/peers/bulk-subscriber.ts', { BENCH_SYSTEM: system, BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace, BENCH_TOPICS: String(topics) });
          try {
            const redisBefore = await redisMemory(admin);
            const subscribed = await peer.next<Subscribed & { ev: string }>((m) => m.ev === 'subscribed', 120_000);
            const redisBytes = (await redisMemory(admin)) - redisBefore;
            const { unsubscribeMs } = await peer.ask<{ unsubscribeMs: number }>({ cmd: 'unsubscribe' }, 'unsubscribed', 120_000);
            samples[system].push({ ...subscribed, unsubscribeMs, redisBytes });
          } finally {
            await peer.kill();
          }
        }
      }
    } finally {
      admin.disconnect();
    }
    return SYSTEMS.map((system): BenchResult => {
      const runs = samples[system];
      const subscribeMs = median(runs.map((r) => r.subscribeMs));
      return {
        scenario: 'subscribe-10k',
        system,
        ops_per_s: Math.round((topics / subscribeMs) * 1000),
        p50_ms: null,
        p99_ms: null,
        topics,
        subscribe_ms: round(subscribeMs),
        subscribe_cpu_ms: round(median(runs.map((r) => r.subscribeCpuMs))),
        unsubscribe_ms: round(median(runs.map((r) => r.unsubscribeMs))),
        heap_b_per_sub: Math.round(median(runs.map((r) => (r.heapAfter - r.heapBefore) / topics))),
        rss_b_per_sub: Math.round(median(runs.map((r) => (r.rssAfter - r.rssBefore) / topics))),
        redis_b_per_sub: Math.round(median(runs.map((r) => r.redisBytes / topics))),
      };
    });
  },
};
