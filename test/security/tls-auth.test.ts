/**
 * TLS (server certificate, mutual TLS) and AUTH with an ACL user, on every
 * connection the library opens: RedisClient's command and subscriber
 * connections, RedisRPCClient's, RedisMutex's and the CLI's. The server is a
 * private redis-server with certificates made by openssl at test time.
 */
import { expect } from 'chai';
import Redis, { type RedisOptions } from 'ioredis';
import { ConnectionError, RedisClient, RedisMutex, RedisRPCClient } from '../../src/index';
import { runCli as runCliProcess } from '../cli/run';
import { freePort, startRedis, type TestRedis } from '../support/redis-server';
import { hasOpenssl, makeTestPki, tlsServerArgs, type TestPki } from '../support/tls';

/** Publishes one event, sets and reads a variable, makes one RPC call and takes and releases a mutex, all over `redis`. */
async function exercise(redis: RedisOptions | string, namespace: string): Promise<void> {
  const server = new RedisRPCClient({ service: 'calc', redis, namespace, queues: { consume: false } });
  const caller = new RedisRPCClient({ service: 'web', redis, namespace, timeoutMs: 5000, queues: { consume: false } });
  const mutex = new RedisMutex({ redis, namespace, nodeId: 'node-a' });
  try {
    await server.expose('add', ([a, b]: [number, number]) => a + b);
    await server.connect();
    await caller.connect();
    let heardPayload: (payload: unknown) => void = () => undefined;
    const heard = new Promise<unknown>((resolve) => (heardPayload = resolve));
    await caller.client.subscribe('module.calc.events', (payload) => heardPayload(payload));
    expect(await server.client.publish('module.calc.events', { n: 1 })).to.be.greaterThan(0);
    expect(await heard).to.deep.equal({ n: 1 });
    expect(await caller.callService('calc', 'add', 2, 3)).to.equal(5);
    expect(await mutex.P('tls-lock', 'node-a', 5000)).to.equal(true);
    expect(await mutex.V('tls-lock')).to.equal(true);
  } finally {
    await mutex.close();
    await caller.close();
    await server.close();
  }
}

describe('security: TLS and AUTH on every connection', function () {
  this.timeout(30_000);
  let pki: TestPki;
  before(function () {
    if (!hasOpenssl()) this.skip();
    pki = makeTestPki();
  });
  after(() => pki?.remove());

  describe('TLS with a server certificate', () => {
    let redis: TestRedis;
    let tlsPort: number;
    before(async () => {
      tlsPort = await freePort();
      redis = await startRedis({ private: true, args: tlsServerArgs(pki, tlsPort, 'no') });
    });
    after(async () => redis?.stop());

    it('runs events, RPC and the mutex over TLS with a trusted CA', async () => {
      await exercise({ host: '127.0.0.1', port: tlsPort, tls: { ca: pki.ca } }, redis.namespace);
    });

    it('refuses a server certificate signed by an unknown CA with a ConnectionError (client, RPC client)', async () => {
      const untrusted: RedisOptions = { host: '127.0.0.1', port: tlsPort, tls: { ca: pki.untrustedCa } };
      const client = new RedisClient({ service: 'web', redis: untrusted, namespace: redis.namespace });
      client.on('error', () => undefined);
      const error = await client.connect().then(() => undefined, (e: unknown) => e);
      await client.close();
      expect(error).to.be.instanceOf(ConnectionError);
      const rpc = new RedisRPCClient({ service: 'web', redis: untrusted, namespace: redis.namespace });
      rpc.client.on('error', () => undefined);
      const rpcError = await rpc.connect().then(() => undefined, (e: unknown) => e);
      await rpc.close();
      expect(rpcError).to.be.instanceOf(ConnectionError);
    });

    it('the CLI connects with --tls-ca and fails with exit code 3 without it', async () => {
      const url = `rediss://127.0.0.1:${tlsPort}`;
      const ok = await runCliProcess(['--redis', url, '--tls-ca', pki.caFile, '--namespace', redis.namespace, 'status', '--json']);
      expect(ok.code, ok.stderr).to.equal(0);
      const refused = await runCliProcess(['--redis', url, '--tls-ca', pki.untrustedCaFile, '--namespace', redis.namespace, '--timeout', '3000', 'status']);
      expect(refused.code, refused.stderr).to.equal(3);
    });
  });

  describe('mutual TLS (client certificates required)', () => {
    let redis: TestRedis;
    let tlsPort: number;
    before(async () => {
      tlsPort = await freePort();
      redis = await startRedis({ private: true, args: tlsServerArgs(pki, tlsPort, 'yes') });
    });
    after(async () => redis?.stop());

    it('runs everything with a client certificate', async () => {
      await exercise({ host: '127.0.0.1', port: tlsPort, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey } }, redis.namespace);
    });

    it('is refused without a client certificate, as a ConnectionError', async () => {
      const client = new RedisClient({ service: 'web', redis: { host: '127.0.0.1', port: tlsPort, tls: { ca: pki.ca } }, namespace: redis.namespace });
      client.on('error', () => undefined);
      const error = await client.connect().then(() => undefined, (e: unknown) => e);
      await client.close();
      expect(error).to.be.instanceOf(ConnectionError);
    });

    it('the CLI takes --tls-cert and --tls-key', async () => {
      const args = ['--redis', `rediss://127.0.0.1:${tlsPort}`, '--tls-ca', pki.caFile, '--tls-cert', pki.clientCertFile, '--tls-key', pki.clientKeyFile];
      const ok = await runCliProcess([...args, '--namespace', redis.namespace, 'status', '--json']);
      expect(ok.code, ok.stderr).to.equal(0);
    });
  });

  describe('AUTH with an ACL user (the default user disabled)', () => {
    let redis: TestRedis;
    let admin: Redis;
    before(async () => {
      redis = await startRedis({ private: true });
      admin = new Redis(redis.url);
      await admin.call('ACL', 'SETUSER', 'admin', 'on', '>admin-pw', '~*', '&*', '+@all');
      await admin.call('ACL', 'SETUSER', 'svc', 'on', '>svc-pw', '~*', '&*', '+@all');
      await admin.call('AUTH', 'admin', 'admin-pw');
      await admin.call('ACL', 'SETUSER', 'default', 'off');
    });
    after(async () => {
      admin?.disconnect();
      await redis?.stop();
    });

    /** Users of every client connection but the admin's. */
    async function connectedUsers(): Promise<string[]> {
      const list = String(await admin.call('CLIENT', 'LIST'));
      return list
        .split('\n')
        .filter((line) => line.length > 0 && !/ user=admin /.test(` ${line} `))
        .map((line) => /(?:^| )user=(\S+)/.exec(line)?.[1] ?? '?');
    }

    for (const form of ['a URL with user and password', 'ioredis options with username and password'] as const) {
      it(`authenticates every connection with ${form}`, async () => {
        const port = Number(new URL(redis.url).port);
        const connection: RedisOptions | string = form.startsWith('a URL') ? `redis://svc:svc-pw@127.0.0.1:${port}` : { host: '127.0.0.1', port, username: 'svc', password: 'svc-pw' };
        const server = new RedisRPCClient({ service: 'calc', redis: connection, namespace: redis.namespace, queues: { consume: false } });
        await server.expose('add', ([a, b]: [number, number]) => a + b);
        await server.connect();
        await server.client.subscribe('module.calc.events', () => undefined);
        const mutex = new RedisMutex({ redis: connection, namespace: redis.namespace, nodeId: 'n' });
        expect(await mutex.P('auth-lock', 'n', 5000)).to.equal(true);
        try {
          const users = await connectedUsers();
          expect(users.length, 'the client, its subscriber and the mutex are connected').to.be.at.least(3);
          expect(users.every((user) => user === 'svc'), `users: ${users.join(', ')}`).to.equal(true);
          await exercise(connection, redis.namespace);
        } finally {
          await mutex.close();
          await server.close();
        }
      });
    }

    it('a wrong password is a ConnectionError keeping the server reason', async () => {
      const port = Number(new URL(redis.url).port);
      const client = new RedisClient({ service: 'web', redis: `redis://svc:wrong@127.0.0.1:${port}`, namespace: redis.namespace });
      client.on('error', () => undefined);
      const error = await client.connect().then(() => undefined, (e: unknown) => e);
      await client.close();
      expect(error).to.be.instanceOf(ConnectionError);
      expect(String((error as Error).message) + String((error as Error).cause)).to.match(/WRONGPASS|invalid username-password/i);
    });

    it('the CLI takes --user and the password from INTRACOM_REDIS_PASSWORD', async () => {
      const port = Number(new URL(redis.url).port);
      const ok = await runCliProcess(['--redis', `redis://127.0.0.1:${port}`, '--user', 'svc', '--namespace', redis.namespace, 'status', '--json'], { INTRACOM_REDIS_PASSWORD: 'svc-pw' });
      expect(ok.code, ok.stderr).to.equal(0);
      const refused = await runCliProcess(['--redis', `redis://127.0.0.1:${port}`, '--user', 'svc', '--namespace', redis.namespace, 'status'], { INTRACOM_REDIS_PASSWORD: 'nope' });
      expect(refused.code, refused.stderr).to.equal(3);
      expect(refused.stderr).not.to.include('nope');
    });
  });
});
