/**
 * The generated ACL runs the library: a private Redis 7 with the `default`
 * user off, every service under a user made from `serviceAclLine` exactly
 * (least privilege from a deployment), the CLI under `aclSetUserLine`'s,
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
import { aclSetUserLine, callersOf, serviceAcl, serviceAclLine, type AclDeployment } from '../../vars/acl';
import { defineVar } from '../../vars/define';
import { NoHandlerError, PermissionError, PROTOCOL_VERSION, RedisMutex, RedisRPCClient, RemoteError, ValidationError } from '../../src/index';
import { runCli } from '../cli/run';
import { Names } from '../../vars/names';
import { rejection, until } from '../support/async';
import { cluster, topologiesAvailable, type TestCluster } from '../support/redis-topologies';
import type { TestRedis } from '../support/redis-server';
import { startAclRedis, type AclRedis } from '../support/acl';

const Price = defineVar({ name: 'price', type: 'number', owner: 'calc', description: 'A price' });
const Ledger = defineVar({ name: 'ledger', type: 'string', owner: 'billing', description: "billing's own, read by nobody else" });
const EvilSecret = defineVar({ name: 'secret', type: 'string', owner: 'web.evil', description: "web.evil's own: web's name is a dotted prefix of its owner's" });

/**
 * The deployment of these tests: calc serves and owns `price`; web reads it, calls and sends to calc, psubscribes `audit.*`, takes a mutex.
 * Three services whose names extend another's, for the dotted-name attacks: `web.evil` (calls calc, owns a variable),
 * `calc.rpc.admin` (called by billing alone), and a service named `service.calc.rpc` (calc's RPC topic).
 */
export const deployment = (namespace: string): AclDeployment => ({
  namespace,
  services: {
    calc: { publishes: ['audit.login'], mutexes: ['acl-lock'] },
    web: { reads: [Price], calls: ['calc'], sends: ['calc'], patterns: ['audit.*'], mutexes: ['acl-lock'] },
    billing: { reads: [Price], calls: ['calc', 'calc.rpc.admin'], mutexes: ['billing-lock'] },
    'web.evil': { calls: ['calc'] },
    'calc.rpc.admin': {},
    'service.calc.rpc': {},
  },
});
const SERVICES = ['calc', 'web', 'billing', 'web.evil', 'calc.rpc.admin', 'service.calc.rpc'];

describe('security: the generated ACL runs the library', function () {
  this.timeout(60_000);
  let acl: AclRedis;
  let admin: Redis;
  let redis: TestRedis;
  const namespace = 'aclns';
  const port = (): number => Number(new URL(redis.url).port);
  const url = (user: string): string => acl.url(user);

  before(async () => {
    acl = await startAclRedis();
    ({ admin, redis } = acl);
    const lines = [
      ...SERVICES.map((service) => serviceAclLine(deployment(namespace), service, { password: `${service}-pw` })),
      aclSetUserLine('ops', { namespace, capabilities: ['variables', 'events', 'registry', 'rpc', 'queues', 'mutex', 'inspect'], password: 'ops-pw' }),
    ];
    for (const line of lines) await acl.setUser(line);
  });
  after(async () => {
    await acl?.stop();
  });

  it('grants exactly the rules it prints (ACL GETUSER reads them back)', async () => {
    const described = (await admin.call('ACL', 'GETUSER', 'web')) as unknown[];
    const fields = new Map<string, unknown>();
    for (let i = 0; i < described.length; i += 2) fields.set(String(described[i]), described[i + 1]);
    const rules = serviceAcl(deployment(namespace), 'web');
    expect(String(fields.get('keys'))).to.equal(rules.keys.join(' '));
    expect(rules.keys).to.include(`%R~${namespace}:ic:{calc}:var:price`);
    expect(rules.keys.join(' ')).not.to.include(`${namespace}:ic:{calc}:queries`);
    expect(rules.selectors).to.deep.equal([`(%W~${namespace}:ic:{calc}:broadcast %W~${namespace}:ic:{calc}:queries +xadd)`]);
    expect(JSON.stringify(fields.get('selectors'))).to.include(`%W~${namespace}:ic:{calc}:queries`);
    expect(String(fields.get('channels'))).to.equal(rules.channels.join(' '));
    expect(String(fields.get('commands'))).to.match(/^-@all /);
    expect(String(fields.get('commands'))).not.to.include('+@all');
  });

  it('runs variables, events, the registry, RPC, the query types and the mutex', async () => {
    const callers = callersOf(deployment(namespace), 'calc');
    expect(callers).to.deep.equal(['billing', 'web', 'web.evil']);
    const calc = new RedisRPCClient({ service: 'calc', redis: url('calc'), namespace, callers, registry: { heartbeatMs: 100, ttlMs: 1000 }, queues: { maxAttempts: 2, visibilityTimeoutMs: 500, blockMs: 50, batchSize: 1 } });
    const web = new RedisRPCClient({ service: 'web', redis: url('web'), namespace, timeoutMs: 5000, queues: { blockMs: 50, batchSize: 1 } });
    const mutex = new RedisMutex({ redis: url('web'), namespace, nodeId: 'web-1' });
    const processed: unknown[] = [];
    try {
      await calc.expose('add', ([a, b]: [number, number]) => a + b);
      await calc.expose('fail', () => {
        throw new Error('no');
      });
      await calc.expose('who', (_args: [], context) => context.callerService);
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
      expect(await web.callService('calc', 'who')).to.equal('web');
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
      // a backlog (batchSize 1 on both sides: an entry a query, a read an entry): the consumers' one-step reads, XREADGROUP inside their script, under the generated user
      const batchesBefore = calc.queryStats().fireAndForget.batches;
      await Promise.all(Array.from({ length: 20 }, (_, n) => [web.fireAndForget('calc', 'note', { n }), web.broadcast('calc', 'note', { n })]).flat());
      await until(() => processed.length === 42, 10_000, 'the backlog');
      expect(calc.queryStats().fireAndForget.batches - batchesBefore).to.equal(20);
      await web.fireAndForget('calc', 'poison', null);
      await until(async () => (await calc.deadLetters('calc')).length === 1, 15_000, 'the dead letter');
      calc.handle('poison', () => undefined);
      expect(await calc.replayDeadLetters('calc')).to.equal(1);

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

  it('refuses a password that would end its rule and start another (`x nopass`), or hold a control character', () => {
    for (const password of ['x nopass', 'p w', 'tab\there', 'nl\nx']) {
      expect(() => serviceAclLine(deployment(namespace), 'web', { password }), JSON.stringify(password)).to.throw(ValidationError, /password/);
      expect(() => aclSetUserLine('ops', { namespace, password }), JSON.stringify(password)).to.throw(ValidationError, /password/);
    }
  });

  it('refuses a catalogue topic in the wrong shape with a ValidationError naming it', () => {
    const wrong = { ...deployment(namespace), catalogue: { topics: { 's*': { publishers: ['calc'] } } } } as unknown as AclDeployment;
    expect(() => serviceAclLine(wrong, 'calc')).to.throw(ValidationError, /catalogue\.topics\.s\*/);
  });

  it('docs/operations.md and docs/security.md show the generated rules, not hand-written ones', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'operations.md'), 'utf8');
    expect(page).to.include(aclSetUserLine('users', { namespace: 'prod', patterns: ['audit.*'] }));
    const security = readFileSync(join(__dirname, '..', '..', 'docs', 'security.md'), 'utf8');
    const plan = JSON.parse(/```json\n([\s\S]*?)```/.exec(security)?.[1] ?? 'null') as AclDeployment;
    expect(plan, 'the deployment of security.md').to.not.equal(null);
    const shown = [...security.matchAll(/^ACL SETUSER .*$/gm)].map((match) => match[0]);
    expect(shown).to.deep.equal(['calc', 'web'].map((service) => serviceAclLine({ ...plan, namespace: 'prod' }, service)));
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

  describe('the denial matrix: each forbidden action refused, through the public API (PermissionError) and raw ioredis (NOPERM)', () => {
    let calc: RedisRPCClient;
    let billing: RedisRPCClient;
    let raw: Redis;
    const names = new Names(namespace);
    const refusal = async (run: () => Promise<unknown>): Promise<unknown> => {
      try {
        await run();
        return 'allowed';
      } catch (error) {
        return error;
      }
    };
    const noperm = async (run: () => Promise<unknown>): Promise<void> => {
      const error = await refusal(run);
      expect(String((error as Error).message ?? error)).to.match(/NOPERM|no permissions/);
    };
    /** A raw connection of one user, disconnected after `run`. */
    const as = async (user: string, run: (connection: Redis) => Promise<unknown>): Promise<unknown> => {
      const connection = new Redis(url(user));
      try {
        return await run(connection);
      } finally {
        connection.disconnect();
      }
    };
    const typed = async (run: () => Promise<unknown>): Promise<void> => {
      const error = await refusal(run);
      expect(error, String(error)).to.be.instanceOf(PermissionError);
      expect((error as PermissionError).code).to.equal('ERR_PERMISSION');
    };

    before(async () => {
      calc = new RedisRPCClient({ service: 'calc', redis: url('calc'), namespace, callers: callersOf(deployment(namespace), 'calc'), queues: { blockMs: 50 } });
      await calc.expose('who', (_args: [], context) => context.callerService);
      calc.handle('note', () => undefined);
      await calc.connect();
      billing = new RedisRPCClient({ service: 'billing', redis: url('billing'), namespace, timeoutMs: 3000 });
      await billing.connect();
      await billing.client.set(Ledger, 'private');
      expect(await billing.callService('calc', 'who')).to.equal('billing');
      raw = new Redis(url('web'));
    });
    after(async () => {
      raw?.disconnect();
      await billing?.close();
      await calc?.close();
    });

    /** A client of `service` on the credentials of `user`, closed after `run`. */
    const on = async <T>(user: string, service: string, run: (client: RedisRPCClient) => Promise<T>, options: Record<string, unknown> = {}): Promise<T> => {
      const client = new RedisRPCClient({ service, redis: url(user), namespace, timeoutMs: 3000, queues: { consume: false }, ...options });
      try {
        await client.connect();
        return await run(client);
      } finally {
        await client.close().catch(() => undefined);
      }
    };
    const asWeb = <T>(service: string, run: (client: RedisRPCClient) => Promise<T>, options: Record<string, unknown> = {}): Promise<T> => on('web', service, run, options);

    it("reading another service's variable it does not declare", async () => {
      await typed(() => asWeb('web', (web) => web.client.get(Ledger)));
      await noperm(() => raw.get(names.variable('billing', 'ledger')));
    });

    it("subscribing to another service's private channel (the change events of a variable it does not read)", async () => {
      await typed(() => asWeb('web', (web) => web.client.watch(Ledger, () => undefined)));
      await noperm(() => as('web', (connection) => connection.subscribe(names.variableChanged('billing', 'ledger'))));
    });

    it('reading the replies meant for another caller', async () => {
      const [instance] = await calc.client.instances('calc');
      const theirs = names.rpcReplies('billing', 'b-1', 'calc');
      await typed(() => asWeb('web', (web) => web.client.subscribe(theirs.slice(namespace.length + 1), () => undefined)));
      await noperm(() => as('web', (connection) => connection.subscribe(theirs)));
      // the callee cannot read what another callee answers either
      await noperm(() => as('calc', (connection) => connection.subscribe(names.rpcReplies('web', instance.instanceId, 'other'))));
    });

    it("reading other callers' requests", async () => {
      const theirs = names.rpcInstance('service.calc.rpc', calc.instanceId, 'billing');
      await typed(() => asWeb('web', (web) => web.client.subscribe(theirs.slice(namespace.length + 1), () => undefined)));
      await noperm(() => as('web', (connection) => connection.subscribe(theirs)));
      await noperm(() => as('web', (connection) => connection.subscribe(names.rpcInstance('service.calc.rpc', calc.instanceId))));
    });

    it("registering as an instance of another service", async () => {
      await typed(() => asWeb('calc', async (fake) => fake.expose('who', () => 'fake')));
      await noperm(() => raw.zadd(names.instanceSet(Names.rpcRegistry('service.calc.rpc')), Date.now() + 60_000, 'fake'));
      await noperm(() => raw.hset(names.instanceAnnouncements(Names.rpcRegistry('service.calc.rpc')), 'fake', 'x'));
      expect((await calc.client.instances('calc')).map((i) => i.instanceId)).to.not.include('fake');
    });

    it("consuming another service's queue (it may only add to it)", async () => {
      await typed(() => asWeb('calc', async (fake) => fake.handle('note', () => undefined), { queues: { consume: true, blockMs: 50 } }));
      await noperm(() => raw.xreadgroup('GROUP', 'workers', 'thief', 'COUNT', 10, 'STREAMS', names.queryStream('calc'), '>'));
      await noperm(() => raw.xrange(names.queryStream('calc'), '-', '+'));
      expect(await raw.xadd(names.queryStream('calc'), '*', 'm', 'x')).to.be.a('string');
    });

    it("stealing, acknowledging or destroying another service's queue it sends to (XADD alone is granted there)", async () => {
      for (const stream of [names.queryStream('calc'), names.broadcastStream('calc')]) {
        const id = await raw.xadd(stream, '*', 'm', 'x');
        await noperm(() => raw.xclaim(stream, 'workers', 'thief', 0, id as string));
        await noperm(() => raw.xack(stream, 'workers', id as string));
        await noperm(() => raw.xdel(stream, id as string));
        await noperm(() => raw.xtrim(stream, 'MAXLEN', 0));
        await noperm(() => raw.call('XGROUP', 'DESTROY', stream, 'workers'));
        await noperm(() => raw.del(stream));
        await noperm(() => raw.set(stream, 'x'));
        await noperm(() => raw.pexpire(stream, 1));
      }
    });

    it('forging the sending service', async () => {
      // through the API: a client that names itself billing on web's credentials gets no reply channel and no request channel
      await typed(() => asWeb('billing', (forger) => forger.callService('calc', 'who')));
      await noperm(() => raw.publish(names.rpcInstance('service.calc.rpc', calc.instanceId, 'billing'), 'x'));
      // on its own channel, a request claiming billing is refused as a forged source, and its handler never runs
      const before = calc.stats().malformedRequests;
      const frame = calc.client.codec.encode([PROTOCOL_VERSION, { headers: { serviceNameSource: 'billing', sourceInstance: 'b-1' }, payloads: [{ queryId: 'f-1', action: 'who', query: [], timeout_ms: 1000 }] }]);
      expect(await raw.publish(names.rpcInstance('service.calc.rpc', calc.instanceId, 'web'), frame)).to.equal(1);
      await until(() => calc.stats().malformedRequests === before + 1, 5000, 'the forged request to be refused');
      // and a caller calc does not name is refused before anything is sent
      const outsider = new RedisRPCClient({ service: 'outsider', redis: redis.url.replace('redis://', 'redis://admin:admin-pw@'), namespace, timeoutMs: 3000 });
      try {
        await outsider.connect();
        await typed(() => outsider.callService('calc', 'who'));
      } finally {
        await outsider.close();
      }
    });

    describe('dotted names: a service whose name is a prefix or an extension of another reaches none of its channels or keys', () => {
      it("calc (which reads service.{calc}.rpc.*) neither reads nor forges the requests to a service named calc.rpc.admin", async () => {
        const admin = new RedisRPCClient({ service: 'calc.rpc.admin', redis: url('calc.rpc.admin'), namespace, callers: callersOf(deployment(namespace), 'calc.rpc.admin') });
        try {
          await admin.expose('who', (_args: [], context) => context.callerService);
          await admin.connect();
          expect(await billing.callService('calc.rpc.admin', 'who')).to.equal('billing');
          const theirs = names.rpcInstance('service.calc.rpc.admin.rpc', admin.instanceId, 'billing');
          await noperm(() => as('calc', (connection) => connection.subscribe(theirs)));
          await noperm(() => as('calc', (connection) => connection.publish(theirs, 'x')));
          // through the API: calc's credentials can neither serve calc.rpc.admin nor call it as billing
          await typed(() => on('calc', 'calc.rpc.admin', async (fake) => fake.expose('who', () => 'fake')));
          await typed(() => on('calc', 'billing', (forger) => forger.callService('calc.rpc.admin', 'who')));
        } finally {
          await admin.close();
        }
      });

      it('web (which reads intracom.rpc.reply.{web}.*.from.{calc}) reads no reply meant for web.evil', async () => {
        const evil = new RedisRPCClient({ service: 'web.evil', redis: url('web.evil'), namespace, timeoutMs: 3000, queues: { consume: false } });
        try {
          await evil.connect();
          expect(await evil.callService('calc', 'who')).to.equal('web.evil');
          const theirs = names.rpcReplies('web.evil', evil.instanceId, 'calc');
          await noperm(() => as('web', (connection) => connection.subscribe(theirs)));
          await noperm(() => as('web', (connection) => connection.publish(theirs, 'x')));
          await typed(() => on('web', 'web.evil', (forger) => forger.callService('calc', 'who')));
        } finally {
          await evil.close();
        }
      });

      it("web (which owns intracom.var.{web}.*) neither watches nor injects the change events of web.evil's variables, nor reads them", async () => {
        await typed(() => on('web', 'web', (web) => web.client.watch(EvilSecret, () => undefined)));
        await typed(() => on('web', 'web', (web) => web.client.get(EvilSecret)));
        await typed(() => on('web', 'web.evil', (forger) => forger.client.set(EvilSecret, 'injected')));
        await noperm(() => as('web', (connection) => connection.subscribe(names.variableChanged('web.evil', 'secret'))));
        await noperm(() => as('web', (connection) => connection.publish(names.variableChanged('web.evil', 'secret'), 'x')));
        await noperm(() => as('web', (connection) => connection.get(names.variable('web.evil', 'secret'))));
      });

      it("a service named service.calc.rpc (calc's RPC topic) cannot register as an instance of calc", async () => {
        await typed(() => on('service.calc.rpc', 'calc', async (fake) => fake.expose('who', () => 'fake')));
        await noperm(() => as('service.calc.rpc', (connection) => connection.zadd(names.instanceSet(Names.rpcRegistry('service.calc.rpc')), Date.now() + 60_000, 'fake')));
        // what it owns is its own: its keys and its registry
        expect(await as('service.calc.rpc', (connection) => connection.set(names.variable('service.calc.rpc', 'x'), '1'))).to.equal('OK');
        expect((await calc.client.instances('calc')).map((i) => i.instanceId)).to.not.include('fake');
      });

      it("web's mutex rule reaches no other mutex's hand-over notices", async () => {
        const wake = names.mutexWake('w-1', 'billing-lock');
        await noperm(() => as('web', (connection) => connection.ssubscribe(wake)));
        await noperm(() => as('web', (connection) => connection.spublish(wake, 'billing-lock|x')));
        await noperm(() => as('web', (connection) => connection.get(names.mutex('billing-lock'))));
        const mutex = new RedisMutex({ redis: url('web'), namespace, nodeId: 'w' });
        try {
          await typed(() => mutex.acquire('billing-lock', { timeoutMs: 1000 }));
        } finally {
          await mutex.close();
        }
      });
    });
  });

  describe('on a Redis Cluster (3 masters, 3 replicas), with the cluster rules (`cluster: true`)', function () {
    this.timeout(60_000);
    let c: TestCluster;
    let clusterNamespace: string;
    const clusterUrl = (user: string): string => c.url.replace('redis+cluster://', `redis+cluster://${user}:${user}-pw@`);

    before(async function () {
      if (!topologiesAvailable || process.env.INTRACOM_TEST_TOPOLOGIES === '0') this.skip();
      c = await cluster();
      clusterNamespace = c.namespace();
      const plan = { ...deployment(clusterNamespace), cluster: true };
      // ACL users are per node: every node gets the same generated lines
      for (const seed of c.seeds) {
        const node = new Redis(seed);
        try {
          for (const service of ['calc', 'web']) await node.call(...(serviceAclLine(plan, service, { password: `${service}-pw` }).split(' ') as [string, ...string[]]));
        } finally {
          node.disconnect();
        }
      }
    });

    it('runs RPC (the caller known from its shard channel), the query types and the mutex under the generated users', async () => {
      const callers = callersOf(deployment(clusterNamespace), 'calc');
      const calc = new RedisRPCClient({ service: 'calc', redis: clusterUrl('calc'), namespace: clusterNamespace, callers, queues: { blockMs: 50 } });
      const web = new RedisRPCClient({ service: 'web', redis: clusterUrl('web'), namespace: clusterNamespace, timeoutMs: 10_000, queues: { blockMs: 50 } });
      const mutex = new RedisMutex({ redis: clusterUrl('web'), namespace: clusterNamespace, nodeId: 'web-1' });
      const notes: unknown[] = [];
      try {
        await calc.expose('who', (_args: [], context) => context.callerService);
        calc.handle('double', (n: number) => n * 2);
        calc.handle('note', (query) => void notes.push(query));
        await calc.connect();
        await web.connect();
        await calc.client.set(Price, 2);
        expect(await web.client.get(Price)).to.equal(2);
        expect(await web.callService('calc', 'who')).to.equal('web');
        expect(await web.sendSync('calc', 'double', 4)).to.equal(8);
        await web.fireAndForget('calc', 'note', { n: 1 });
        await until(() => notes.length === 1, 10_000, 'the FIRE_AND_FORGET query');
        const lock = await mutex.acquire('acl-lock', { timeoutMs: 5000 });
        expect(lock.fence).to.be.a('number');
        await lock.release();
        expect(await rejection(web.client.get(Ledger))).to.be.instanceOf(PermissionError);
      } finally {
        await mutex.close();
        await web.close();
        await calc.close();
      }
    });
  });
});
