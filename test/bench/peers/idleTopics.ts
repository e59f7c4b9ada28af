/**
 * The idle topics of the benchmark arrangements that measure a process
 * holding many subscriptions (`events` and `rpc` with 10,001 topics): K
 * topics subscribed before measuring, on which nothing is ever published, so
 * that only what holding them costs shows in the figures.
 */
import type Redis from 'ioredis';
import { RedisClient } from '../../../src/client/RedisClient';

/** The topics `${prefix}.idle.0` to `${prefix}.idle.${count - 1}`. */
export function idleTopics(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}.idle.${i}`);
}

/**
 * Subscribes `topics` on the connection (or client) that receives the
 * measured messages: an intracom client subscribes them one `subscribe` each
 * in one tick (its per-topic path, as a service subscribing topic by topic
 * would); an ioredis subscriber in one `SUBSCRIBE` of their channels
 * (`namespace:` prefixed, as intracom names its channels).
 */
export async function subscribeIdle(on: RedisClient | Redis, topics: readonly string[], namespace: string): Promise<void> {
  if (topics.length === 0) return;
  if (on instanceof RedisClient) await Promise.all(topics.map((topic) => on.subscribe(topic, () => undefined)));
  else await on.subscribe(...topics.map((topic) => (namespace ? `${namespace}:${topic}` : topic)));
}
