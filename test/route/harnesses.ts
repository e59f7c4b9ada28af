import pino from 'pino';
import { Names } from '../../vars/names';
import { MsgpackCodec } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { MemoryRoute } from '../../src/route/MemoryRoute';
import { RedisRoute } from '../../src/route/RedisRoute';
import type { RouteOptions } from '../../src/route/RouteOptions';
import { testTargets, type TargetKind } from '../support/redis-targets';
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
  return targetHarness(testTargets()[0]);
}

/** Redis routes on one kind of deployment: one server, a cluster or Sentinel. */
export async function targetHarness(kind: TargetKind): Promise<RouteHarness> {
  const redis = await kind.start();
  const raw = redis.open();
  const onCluster = redis.kind === 'cluster';
  return {
    // on a cluster: one hash tag, so that every channel is a shard channel and every key of a test shares a slot
    prefix: onCluster ? `{${redis.namespace}}.` : `${redis.namespace}.`,
    classic: onCluster ? { prefix: `${redis.namespace}.` } : undefined,
    async create() {
      const route = new RedisRoute(redis.url, routeOptions());
      await route.connect();
      return route;
    },
    async injectRaw(channel, bytes) {
      if (onCluster && channel.includes('{')) await raw.spublish(channel, bytes);
      else await raw.publish(channel, bytes);
    },
    async dispose() {
      raw.disconnect();
      await redis.stop();
    },
  };
}
