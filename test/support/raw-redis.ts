/**
 * What the hostile-input tests attack with: a private Redis, a raw ioredis
 * connection to it, and frames written by msgpackr as docs/protocol.md spells
 * them (not by intracom's encoder, which refuses what a hostile peer sends).
 */
import Redis from 'ioredis';
import { pack } from 'msgpackr';
import { startRedis, type TestRedis } from './redis-server';

/** A frame `[5, message, ...]` as another language's writer would send it. */
export function rawFrame(...messages: unknown[]): Buffer {
  return pack([5, ...messages]);
}

/** The Redis and the raw connection of one describe block (set in its `before`, closed in its `after`). */
export interface RawRedis {
  redis: TestRedis;
  raw: Redis;
}

/** Registers the hooks that start a Redis and a raw connection for the enclosing describe block, and stop them. */
export function useRawRedis(): RawRedis {
  const fixture = {} as RawRedis;
  before(async () => {
    fixture.redis = await startRedis();
    fixture.raw = new Redis(fixture.redis.url);
  });
  after(async () => {
    fixture.raw?.disconnect();
    await fixture.redis?.stop();
  });
  return fixture;
}
