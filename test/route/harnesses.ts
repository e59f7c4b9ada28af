import pino from 'pino';
import { Names } from '../../vars/names';
import { MsgpackCodec } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { MemoryRoute } from '../../src/route/MemoryRoute';
import { RedisRoute } from '../../src/route/RedisRoute';
import type { RouteOptions } from '../../src/route/RouteOptions';
import { testTargets, type TargetKind } from '../support/redis-targets';
import { startAclRedis } from '../support/acl';
import { serviceAclLine } from '../../vars/acl';
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

/**
 * Redis routes under one service's generated least-privilege ACL user
 * (`serviceAclLine`), on a private Redis 7 with the `default` user off: every
 * channel and key of the suite lies in the service's own space
 * (`<ns>:ic:{routes}:...`, its keys, and declared as a topic of its plan),
 * its registry is its own service's, and each psubscribe pattern is declared
 * in its plan before the test uses it.
 */
export async function aclHarness(): Promise<RouteHarness> {
  const acl = await startAclRedis();
  const namespace = 'aclrt';
  const service = 'routes';
  const own = `ic:{${service}}:`;
  const patterns = new Set<string>();
  const grant = () => acl.setUser(serviceAclLine({ namespace, services: { [service]: { subscribes: [`${own}*`], patterns: [...patterns], inspect: true } } }, service, { password: `${service}-pw` }));
  await grant();
  return {
    prefix: `${namespace}:${own}`,
    registryOwner: service,
    async create() {
      const route = new RedisRoute(acl.url(service), { ...routeOptions(), names: new Names(namespace) });
      await route.connect();
      return route;
    },
    async declarePatterns(list) {
      for (const pattern of list) patterns.add(pattern.slice(namespace.length + 1));
      await grant();
    },
    async injectRaw(channel, bytes) {
      await acl.admin.publish(channel, bytes);
    },
    dispose: () => acl.stop(),
  };
}
