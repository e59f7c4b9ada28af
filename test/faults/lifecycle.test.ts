/**
 * Lifecycle under outages: close() and connect() end in bounded time whatever
 * Redis does, a connect interrupted by close leaves nothing running, failures
 * are typed, and a caller's own connection keeps no listeners of ours.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { DEFAULT_CLIENT_OPTIONS } from '../../src/client/RedisClientOptions';
import { ConnectionError, IntracomError, NotConnectedError, PermissionError, RedisUnavailableError } from '../../src/errors/index';
import { defineVar } from '../../vars/define';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { rejection, until } from '../support/async';
import { startProxy, type TestProxy } from '../support/proxy';
import { startRedis, useRedis, type TestRedis } from '../support/redis-server';

interface Line {
  msg: string;
  abandoned?: string[];
  abandonedCommands?: number;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'warn' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  return { logger, lines };
}

async function timed(work: Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work;
  return performance.now() - started;
}

describe('lifecycle under outages', function () {
  this.timeout(30_000);
  const redis = useRedis();
  let proxy: TestProxy;
  const cleanup: Array<() => Promise<void> | void> = [];

  beforeEach(async () => {
    proxy = await startProxy(redis().url);
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
    await proxy.close();
  });

  const options = (service: string) => ({ service, redis: proxy.url, namespace: redis().namespace, registry: { heartbeatMs: 50, ttlMs: 400 } });

  describe('close() while Redis is down ends within closeTimeoutMs and says what it abandoned', () => {
    it('RedisClient', async () => {
      const { logger, lines } = capture();
      const client = new RedisClient({ ...options('down-client'), logger, closeTimeoutMs: 500 });
      await client.connect();
      await client.subscribe('news', () => undefined);
      proxy.set('down');
      await until(() => client.status === 'reconnecting', 5000, 'the client to notice the outage');
      const elapsed = await timed(client.close());
      expect(elapsed).to.be.below(500 + 1000);
      expect(client.status).to.equal('closed');
      expect(lines.some((l) => l.msg.startsWith('closed without finishing') && (l.abandoned?.length ?? 0) > 0)).to.equal(true);
    });

    it('RedisClient, with writes queued while Redis does not answer (silent): they reject and are counted', async () => {
      const { logger, lines } = capture();
      const client = new RedisClient({ ...options('silent-client'), logger, closeTimeoutMs: 400 });
      await client.connect();
      proxy.set('silent');
      const publishes = Array.from({ length: 5 }, (_, i) => client.publish('news', { i }).catch((error: unknown) => error));
      const elapsed = await timed(client.close());
      expect(elapsed).to.be.below(400 + 1000);
      for (const outcome of await Promise.all(publishes)) expect(outcome).to.be.instanceOf(Error);
      expect(lines.some((l) => (l.abandonedCommands ?? 0) > 0)).to.equal(true);
    });

    it('RedisRPCClient, serving and calling, with durable consumers running', async () => {
      const { logger } = capture();
      const rpc = new RedisRPCClient({ ...options('down-rpc'), logger, closeTimeoutMs: 600, queryGraceMs: 0, queues: { blockMs: 200 } });
      await rpc.expose('ping', () => 'pong');
      await rpc.connect();
      expect(await rpc.callService('down-rpc', 'ping')).to.equal('pong');
      proxy.set('down');
      await until(() => rpc.client.status === 'reconnecting', 5000, 'the client to notice the outage');
      const elapsed = await timed(rpc.close());
      expect(elapsed).to.be.below(600 + 1000);
      expect(rpc.client.status).to.equal('closed');
    });

    it('RedisRPCClient with a handler in progress: its signal fires by closeTimeoutMs though leaving the registry never completes', async () => {
      const rpc = new RedisRPCClient({ ...options('down-handler'), closeTimeoutMs: 500, queryGraceMs: 0 });
      let aborted = false;
      let running!: () => void;
      const started = new Promise<void>((resolve) => (running = resolve));
      await rpc.expose('hang', (_args, context) => {
        running();
        return new Promise((_, reject) => context.signal.addEventListener('abort', () => ((aborted = true), reject(new Error('aborted')))));
      });
      await rpc.connect();
      rpc.callService('down-handler', 'hang').catch(() => undefined);
      await started;
      proxy.set('silent');
      const elapsed = await timed(rpc.close());
      expect(elapsed).to.be.below(500 + 1000);
      expect(aborted).to.equal(true);
    });

    it('RedisMutex on a RedisClient, holding a lock', async () => {
      const client = new RedisClient({ ...options('down-mutex'), closeTimeoutMs: 300 });
      await client.connect();
      cleanup.push(() => client.close());
      const mutex = new RedisMutex({ redis: client, closeTimeoutMs: 300, commandTimeoutMs: 10_000 });
      expect(await mutex.P('job', 'node-1', 60_000)).to.equal(true);
      proxy.set('silent');
      const elapsed = await timed(mutex.close());
      expect(elapsed).to.be.below(300 + 1000);
    });
  });

  describe('connect()', () => {
    it('rejects with ConnectionError within connectTimeoutMs against a server that accepts and never answers', async () => {
      const silent = await startProxy();
      cleanup.push(() => silent.close());
      const client = new RedisClient({ service: 'hung', redis: silent.url, connectTimeoutMs: 300 });
      const started = performance.now();
      const error = await rejection(client.connect());
      expect(performance.now() - started).to.be.below(300 + 1000);
      expect(error).to.be.instanceOf(ConnectionError);
      expect(error.message).to.match(/connectTimeoutMs/);
      expect(silent.accepted).to.be.greaterThan(0);
      await client.close();
    });

    it('rejects within the documented default (10 s) when no timeout is given', async function () {
      this.timeout(20_000);
      expect(DEFAULT_CLIENT_OPTIONS.connectTimeoutMs).to.equal(10_000);
      const silent = await startProxy();
      cleanup.push(() => silent.close());
      const rpc = new RedisRPCClient({ service: 'hung', redis: silent.url });
      const started = performance.now();
      const error = await rejection(rpc.connect());
      const elapsed = performance.now() - started;
      expect(error).to.be.instanceOf(ConnectionError);
      expect(elapsed).to.be.within(9_000, 12_000);
      await rpc.close();
    });

    it('close() during connect(): connect rejects, and the instance never appears in instances() afterwards', async () => {
      const observer = new RedisClient({ service: 'observer', redis: redis().url, namespace: redis().namespace });
      await observer.connect();
      cleanup.push(() => observer.close());
      for (let round = 0; round < 10; round++) {
        const client = new RedisClient(options('racer'));
        const connecting = client.connect().then(
          () => 'connected',
          (error: unknown) => error,
        );
        // close at a different moment each round: before the route is up, while announcing, after
        for (let i = 0; i < round; i++) await new Promise((resolve) => setImmediate(resolve));
        await client.close();
        const outcome = await connecting;
        if (outcome !== 'connected') expect(outcome).to.be.instanceOf(Error);
      }
      // several heartbeats later, no racer is registered
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await observer.instances('racer')).to.deep.equal([]);
    });

    it('a failed RedisRPCClient.connect() can be retried', async () => {
      proxy.set('down');
      const rpc = new RedisRPCClient({ ...options('retry'), connectTimeoutMs: 2000 });
      cleanup.push(() => rpc.close());
      await rpc.expose('ping', () => 'pong');
      const error = await rejection(rpc.connect());
      expect(error).to.be.instanceOf(ConnectionError);
      proxy.set('forward');
      await rpc.connect();
      expect(await rpc.callService('retry', 'ping')).to.equal('pong');
    });

    it('publishing while the client reconnects says so, and what to do', async () => {
      const client = new RedisClient(options('reconnecting'));
      cleanup.push(() => client.close());
      await client.connect();
      proxy.set('down');
      await until(() => client.status === 'reconnecting', 5000, 'the client to notice the outage');
      const error = await rejection(client.publish('news', 1));
      expect(error).to.be.instanceOf(NotConnectedError);
      expect(error.message).to.match(/reconnecting by itself/);
      expect(error.message).not.to.match(/call connect\(\) first/);
      proxy.set('forward');
      await once(client, 'ready');
      expect(await client.publish('news', 1)).to.equal(0);
    });
  });

  describe('every command issued during an outage settles with an intracom error', () => {
    const Banner = defineVar({ name: 'OutageBanner', type: 'string', owner: 'outage', description: 'a variable written during outages' });
    const settle = (work: Promise<unknown>) => work.then(() => 'resolved' as const, (error: unknown) => error);
    /** The outcome of `work`, or 'pending' when it has not settled within `ms`. */
    const within = async (work: Promise<unknown>, ms: number) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
      try {
        return await Promise.race([work, late]);
      } finally {
        clearTimeout(timer);
      }
    };

    it('set, get and queueStatus while reconnecting fail at once with NotConnectedError', async () => {
      const client = new RedisClient({ ...options('outage') });
      const rpc = new RedisRPCClient({ ...options('outage-caller'), closeTimeoutMs: 300 });
      cleanup.push(() => client.close(), () => rpc.close());
      await Promise.all([client.connect(), rpc.connect()]);
      proxy.set('down');
      await until(() => client.status === 'reconnecting' && rpc.client.status === 'reconnecting', 5000, 'the clients to notice the outage');
      const outcomes = await Promise.all(
        [client.set(Banner, 'x'), client.get(Banner), rpc.queueStatus('outage')].map((work) => within(settle(work), 1000)),
      );
      for (const outcome of outcomes) {
        expect(outcome).to.be.instanceOf(NotConnectedError);
        expect((outcome as Error).message).to.match(/reconnecting by itself/);
      }
    });

    it('writes caught by the drop and durable sends waiting through the outage reject at close() with RedisUnavailableError (outcome unknown)', async () => {
      const client = new RedisClient({ ...options('outage-close'), closeTimeoutMs: 300 });
      const rpc = new RedisRPCClient({ ...options('outage-close-caller'), closeTimeoutMs: 300, queues: { requireKnownDestination: false } });
      await Promise.all([client.connect(), rpc.connect()]);
      proxy.set('down');
      // issued before ioredis sees the drop: they wait to be resent when Redis is back
      const pending = [client.set(Banner, 'x'), client.get(Banner)].map(settle);
      await until(() => client.status === 'reconnecting' && rpc.client.status === 'reconnecting', 5000, 'the clients to notice the outage');
      // a durable send waits through a short outage instead of failing at once
      pending.push(...[rpc.fireAndForget('outage', 'job', { a: 1 }), rpc.broadcast('outage', 'job', { a: 1 })].map(settle));
      await Promise.all([client.close(), rpc.close()]);
      const outcomes = await within(Promise.all(pending), 1000);
      expect(outcomes, 'settled within 1 s of close()').to.not.equal('pending');
      for (const outcome of outcomes as unknown[]) {
        expect(outcome).to.be.instanceOf(RedisUnavailableError);
        expect((outcome as Error).message).to.match(/outcome is unknown/);
      }
    });

    it('writes Redis never answered (frozen) reject at close() with RedisUnavailableError, never a raw ioredis error', async () => {
      const client = new RedisClient({ ...options('frozen'), closeTimeoutMs: 300 });
      const rpc = new RedisRPCClient({ ...options('frozen-caller'), closeTimeoutMs: 300 });
      await Promise.all([client.connect(), rpc.connect()]);
      proxy.set('silent');
      const pending = [client.set(Banner, 'x'), rpc.fireAndForget('frozen', 'job', { a: 1 })].map(settle);
      await Promise.all([client.close(), rpc.close()]);
      const outcomes = await within(Promise.all(pending), 1000);
      expect(outcomes, 'settled within 1 s of close()').to.not.equal('pending');
      for (const outcome of outcomes as unknown[]) {
        expect(outcome).to.be.instanceOf(IntracomError);
        expect((outcome as Error).message).to.match(/outcome is unknown/);
      }
    });
  });

  it('a caller-owned ioredis connection keeps no listeners after the clients created on it close', async () => {
    const own = new Redis(redis().url);
    cleanup.push(() => own.disconnect());
    await new Promise((resolve) => own.once('ready', resolve));
    const events = ['error', 'reconnecting', 'close', 'ready', 'end', 'connect'];
    const before = Object.fromEntries(events.map((e) => [e, own.listenerCount(e)]));
    for (let i = 0; i < 12; i++) {
      const client = new RedisClient({ service: `owned-${i}`, redis: own, namespace: redis().namespace });
      await client.connect();
      const rpc = new RedisRPCClient({ client });
      await rpc.connect();
      await rpc.close();
      await client.close();
    }
    const after = Object.fromEntries(events.map((e) => [e, own.listenerCount(e)]));
    expect(after).to.deep.equal(before);
    expect(await own.ping()).to.equal('PONG');
  });

  describe('connection failures are ConnectionErrors keeping the server reason as cause', () => {
    let secured: TestRedis;
    before(async () => {
      secured = await startRedis({ private: true });
      const admin = new Redis(secured.url);
      // a user that may log in and nothing else, and one with a password to get wrong
      await admin.call('ACL', 'SETUSER', 'nobody', 'on', '>pw', '-@all', '+hello', '+ping', '+info', '+auth', '+client');
      await admin.call('ACL', 'SETUSER', 'keeper', 'on', '>right', '~*', '&*', '+@all');
      admin.disconnect();
    });
    after(() => secured.stop());

    it('a wrong password (WRONGPASS)', async () => {
      const client = new RedisClient({ service: 'intruder', redis: { ...urlOptions(secured.url), username: 'keeper', password: 'wrong' }, connectTimeoutMs: 3000 });
      const error = await rejection(client.connect());
      expect(error).to.be.instanceOf(ConnectionError);
      expect(String((error.cause as Error)?.message)).to.match(/WRONGPASS|NOAUTH|invalid/i);
      await client.close();
    });

    it('an ACL denial', async () => {
      const client = new RedisClient({ service: 'limited', redis: { ...urlOptions(secured.url), username: 'nobody', password: 'pw' }, connectTimeoutMs: 3000 });
      const error = await rejection(client.connect());
      // not a connection problem: the server answered, and refused (docs/security.md)
      expect(error).to.be.instanceOf(PermissionError);
      expect(String((error.cause as Error)?.message)).to.match(/NOPERM|no permissions/);
      await client.close();
      const rpc = new RedisRPCClient({ service: 'limited', redis: { ...urlOptions(secured.url), username: 'nobody', password: 'pw' }, connectTimeoutMs: 3000 });
      const rpcError = await rejection(rpc.connect());
      expect(rpcError).to.be.instanceOf(PermissionError);
      await rpc.close();
    });

    it('a MOVED reply (a Cluster node spoken to as a single server)', async () => {
      const moved = await startFakeServer('-MOVED 3999 127.0.0.1:7001\r\n');
      cleanup.push(() => moved.close());
      const client = new RedisClient({ service: 'lost', redis: moved.url, connectTimeoutMs: 3000 });
      const error = await rejection(client.connect());
      expect(error).to.be.instanceOf(ConnectionError);
      expect(error.message, error.message).to.match(/MOVED/);
      expect(error.cause).to.be.instanceOf(Error);
      await client.close();
    });
  });
});

function urlOptions(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

/** A server that answers every command with `reply` (raw RESP), except the connection handshake. */
async function startFakeServer(reply: string): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk) => {
      // one reply per command (each starts with a RESP array header); INFO (the ready check) gets a plain answer
      const info = 'redis_version:7.0.0\r\nloading:0\r\n';
      const commands = chunk.toString('latin1').split(/(?=\*\d+\r\n)/);
      for (const command of commands) {
        if (!command.startsWith('*')) continue;
        socket.write(/\binfo\b/i.test(command) ? `$${info.length}\r\n${info}\r\n` : reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${address.port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
