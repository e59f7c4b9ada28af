/**
 * The generated ACL runs the library: a private Redis 7 with the `default`
 * user off, every service under a user made from `aclSetUserLine` exactly,
 * and each capability exercised: variables and watch, events and a declared
 * pattern, the registry, RPC (result and typed errors), the four query types
 * with dead letters and replay, the mutex with fencing, and the CLI's status.
 * What the rules leave out is refused: an undeclared pattern, another
 * namespace's keys, a command no capability needs.
 *
 * A NOPERM failure in the second test means the library now sends a command
 * vars/acl.ts does not list: add it to the capability that sends it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import Redis from 'ioredis';
import { aclRules, aclSetUserLine } from '../../vars/acl';
import { defineVar } from '../../vars/define';
import { NoHandlerError, RedisMutex, RedisRPCClient, RemoteError } from '../../src/index';
import { runCli } from '../cli/run';
import { Names } from '../../vars/names';
import { until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

const Price = defineVar({ name: 'price', type: 'number', owner: 'calc', description: 'A price' });

describe('security: the generated ACL runs the library', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let admin: Redis;
  const namespace = 'aclns';
  const port = (): number => Number(new URL(redis.url).port);
  const url = (user: string): string => `redis://${user}:${user}-pw@127.0.0.1:${port()}`;

  before(async () => {
    redis = await startRedis({ private: true });
    admin = new Redis(redis.url);
    await admin.call('ACL', 'SETUSER', 'admin', 'on', '>admin-pw', '~*', '&*', '+@all');
    await admin.call('AUTH', 'admin', 'admin-pw');
    await admin.call('ACL', 'SETUSER', 'default', 'off');
    for (const [user, options] of [
      ['calc', { namespace }],
      ['web', { namespace, patterns: ['audit.*'] }],
      ['ops', { namespace, capabilities: ['variables', 'events', 'registry', 'rpc', 'queues', 'mutex', 'inspect'] as const }],
    ] as const) {
      const line = aclSetUserLine(user, { ...options, password: `${user}-pw` });
      await admin.call(...(line.split(' ') as [string, ...string[]]));
    }
  });
  after(async () => {
    admin?.disconnect();
    await redis?.stop();
  });

  it('grants exactly the rules it prints (ACL GETUSER reads them back)', async () => {
    const described = (await admin.call('ACL', 'GETUSER', 'web')) as unknown[];
    const fields = new Map<string, unknown>();
    for (let i = 0; i < described.length; i += 2) fields.set(String(described[i]), described[i + 1]);
    const rules = aclRules({ namespace, patterns: ['audit.*'] });
    expect(String(fields.get('keys'))).to.equal(rules.keys.join(' '));
    expect(String(fields.get('channels'))).to.equal(rules.channels.join(' '));
    expect(String(fields.get('commands'))).to.match(/^-@all /);
    expect(String(fields.get('commands'))).not.to.include('+@all');
  });

  it('runs variables, events, the registry, RPC, the query types and the mutex', async () => {
    const calc = new RedisRPCClient({ service: 'calc', redis: url('calc'), namespace, registry: { heartbeatMs: 100, ttlMs: 1000 }, queues: { maxAttempts: 2, visibilityTimeoutMs: 500, blockMs: 50 } });
    const web = new RedisRPCClient({ service: 'web', redis: url('web'), namespace, timeoutMs: 5000, queues: { blockMs: 50 } });
    const mutex = new RedisMutex({ redis: url('web'), namespace, nodeId: 'web-1' });
    const processed: unknown[] = [];
    try {
      await calc.expose('add', ([a, b]: [number, number]) => a + b);
      await calc.expose('fail', () => {
        throw new Error('no');
      });
      calc.handle('note', (query) => void processed.push(query));
      calc.handle('double', (query: number) => query * 2);
      calc.handle('poison', () => {
        throw new Error('always');
      });
      await calc.connect();
      await web.connect();

      // variables and watch
      const changes: unknown[] = [];
      await web.client.watch(Price, (change) => void changes.push(change.value));
      await calc.client.set(Price, 4.5);
      expect(await web.client.get(Price)).to.equal(4.5);
      await until(() => changes.length === 1, 5000, 'the change event');

      // events, and a declared pattern
      const heard: unknown[] = [];
      await web.client.psubscribe('audit.*', (payload) => void heard.push(payload));
      await calc.client.publish('audit.login', { user: 'u' });
      await until(() => heard.length === 1, 5000, 'the audit event');

      // registry and RPC
      expect((await web.client.instances('calc')).length).to.equal(1);
      expect(await web.callService('calc', 'add', 2, 3)).to.equal(5);
      expect(await web.callService('calc', 'nothing').catch((e: unknown) => e)).to.be.instanceOf(NoHandlerError);
      expect(await web.callService('calc', 'fail').catch((e: unknown) => e)).to.be.instanceOf(RemoteError);

      // the query types, dead letters and replay
      await web.fireAndForget('calc', 'note', { n: 1 });
      await web.broadcast('calc', 'note', { n: 2 });
      expect(await web.sendSync('calc', 'double', 21)).to.equal(42);
      const handle = web.sendAsync<number>('calc', 'double', 5);
      await handle.promise;
      expect(handle.result).to.equal(10);
      await until(() => processed.length === 2, 10_000, 'the durable queries');
      await web.fireAndForget('calc', 'poison', null);
      await until(async () => (await web.deadLetters('calc')).length === 1, 15_000, 'the dead letter');
      calc.handle('poison', () => undefined);
      expect(await web.replayDeadLetters('calc')).to.equal(1);

      // the mutex, fenced
      const lock = await mutex.acquire('acl-lock', { timeoutMs: 5000 });
      expect(lock.fence).to.be.a('number');
      await lock.extend(5000);
      // a waiting acquire: queued, then handed the mutex by the release
      const waiter = new RedisMutex({ redis: url('calc'), namespace, nodeId: 'calc-1' });
      const waiting = waiter.acquire('acl-lock', { retryDelayMs: 5000, retryJitterMs: 0 });
      await until(async () => (await admin.zcard(new Names(namespace).mutexQueue('acl-lock'))) === 1, 5000, 'the waiter to queue');
      await lock.release();
      await (await waiting).release();
      await waiter.close();
      expect(await mutex.P('acl-lock', 'web-1', 1000)).to.equal(true);
      expect(await mutex.V('acl-lock')).to.equal(true);
    } finally {
      await mutex.close();
      await web.close();
      await calc.close();
    }
  });

  it('the CLI status runs under a user with the inspect capability', async () => {
    const result = await runCli(['--redis', `redis://127.0.0.1:${port()}`, '--user', 'ops', '--namespace', namespace, 'status', '--json'], { INTRACOM_REDIS_PASSWORD: 'ops-pw' });
    expect(result.code, result.stderr).to.equal(0);
  });

  it('docs/operations.md shows the generated rules, not hand-written ones', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'operations.md'), 'utf8');
    expect(page).to.include(aclSetUserLine('users', { namespace: 'prod', patterns: ['audit.*'] }));
  });

  it('refuses what the rules leave out: an undeclared pattern, another namespace, another command', async () => {
    const calc = new Redis(url('calc'));
    const refused = async (run: () => Promise<unknown>): Promise<string> => {
      try {
        await run();
        return 'allowed';
      } catch (error) {
        return String((error as Error).message);
      }
    };
    const probe = new Redis(url('calc'));
    try {
      expect(await refused(() => probe.psubscribe(`${namespace}:audit.*`))).to.match(/NOPERM/);
      expect(await refused(() => calc.get('otherns:ic:{calc}:var:price'))).to.match(/NOPERM/);
      expect(await refused(() => calc.flushall())).to.match(/NOPERM/);
      expect(await refused(() => calc.call('CONFIG', 'GET', 'maxmemory'))).to.match(/NOPERM/);
      expect(await refused(() => calc.keys('*'))).to.match(/NOPERM/);
    } finally {
      probe.disconnect();
      calc.disconnect();
    }
  });
});
