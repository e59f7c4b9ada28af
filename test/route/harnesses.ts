import Redis from 'ioredis';
import pino from 'pino';
import { Names } from '../../vars/names';
import { MsgpackCodec } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { MemoryRoute } from '../../src/route/MemoryRoute';
import { RedisRoute } from '../../src/route/RedisRoute';
import type { RouteOptions } from '../../src/route/RouteOptions';
import { startRedis } from '../support/redis-server';
import type { RouteHarness } from './conformance';

/** The options every test route is built with. */
export function routeOptions(): RouteOptions {
  return {
    codec: new MsgpackCodec(),
    limits: { maxPayloadBytes: 1024 * 1024, maxFrameBytes: 64 * 1024 },
    logger: pino({ level: 'silent' }),
    names: new Names(''),
  };
}

/** Memory routes on a bus of their own. */
export async function memoryHarness(): Promise<RouteHarness> {
  const bus = new MemoryBus();
  return {
    prefix: 'mem.',
    async create() {
      const route = new MemoryRoute(routeOptions(), bus);
      await route.connect();
      return route;
    },
    async injectRaw(channel, bytes) {
      bus.publish(channel, bytes);
    },
    async dispose() {},
  };
}

/** Redis routes on a Redis of this file's own (or REDIS_URL, with a unique channel prefix). */
export async function redisHarness(): Promise<RouteHarness> {
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  return {
    prefix: `${redis.namespace}.`,
    async create() {
      const route = new RedisRoute(redis.url, routeOptions());
      await route.connect();
      return route;
    },
    async injectRaw(channel, bytes) {
      await raw.publish(channel, bytes);
    },
    async dispose() {
      raw.disconnect();
      await redis.stop();
    },
  };
}
