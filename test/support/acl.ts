/**
 * A private Redis 7 with ACLs on: an `admin` user for set-up, the `default`
 * user off, and users made from generated `ACL SETUSER` lines, each with the
 * password `<user>-pw`. Every client of a test connects as one of them.
 */
import Redis from 'ioredis';
import { serviceAclLine, type AclDeployment } from '../../vars/acl';
import { startRedis, type TestRedis } from './redis-server';
import type { TargetKind, TestTarget } from './redis-targets';

export interface AclRedis {
  readonly redis: TestRedis;
  /** A connection as `admin` (every command, key and channel). */
  readonly admin: Redis;
  /** `redis://<user>:<user>-pw@host:port`. */
  url(user: string): string;
  /** Runs one generated `ACL SETUSER` line (its password must be `<user>-pw`). */
  setUser(line: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startAclRedis(): Promise<AclRedis> {
  const redis = await startRedis({ private: true });
  const admin = new Redis(redis.url);
  await admin.call('ACL', 'SETUSER', 'admin', 'on', '>admin-pw', '~*', '&*', '+@all');
  await admin.call('AUTH', 'admin', 'admin-pw');
  await admin.call('ACL', 'SETUSER', 'default', 'off');
  const port = Number(new URL(redis.url).port);
  return {
    redis,
    admin,
    url: (user) => `redis://${user}:${user}-pw@127.0.0.1:${port}`,
    async setUser(line) {
      await admin.call(...(line.split(' ') as [string, ...string[]]));
    },
    async stop() {
      admin.disconnect();
      await redis.stop();
    },
  };
}

/**
 * A suite target whose clients run as one service's generated user: `url`
 * carries that user, `open()` is an admin connection (the operator's view,
 * for inspection). `plan` gives the deployment for the target's namespace.
 */
export function aclTarget(service: string, plan: (namespace: string) => AclDeployment): TargetKind {
  return {
    kind: 'redis',
    suffix: ` under the generated ACL of "${service}"`,
    async start(): Promise<TestTarget> {
      const acl = await startAclRedis();
      const namespace = 'acl';
      await acl.setUser(serviceAclLine({ ...plan(namespace), namespace }, service, { password: `${service}-pw` }));
      const adminUrl = acl.redis.url.replace('redis://', 'redis://admin:admin-pw@');
      return { kind: 'redis', url: acl.url(service), namespace, open: () => new Redis(adminUrl), stop: () => acl.stop() };
    },
  };
}
