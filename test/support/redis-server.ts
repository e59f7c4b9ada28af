/**
 * The test fixture that gives every test file a real Redis.
 *
 * Order of preference, as the project's standards require:
 * 1. `REDIS_URL` when set (shared server: callers isolate themselves with a namespace);
 * 2. a container from testcontainers when a Docker engine answers;
 * 3. a private `redis-server` (the OS package) on a free loopback port, stopped afterwards;
 * 4. otherwise a clear error saying what to install.
 *
 * Only a private server can be restarted or configured (AOF); tests that need
 * that ask for `{ private: true }` and are skipped on a shared `REDIS_URL`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';

export interface TestRedis {
  /** `redis://host:port` of the server. */
  readonly url: string;
  /** Where it came from. */
  readonly kind: 'env' | 'container' | 'process';
  /** A namespace unique to this fixture, for isolation on shared servers. */
  readonly namespace: string;
  /** Stops the server when this fixture started it. */
  stop(): Promise<void>;
  /** Restarts a private server on the same port and data directory (AOF kept). */
  restart?(): Promise<void>;
}

export interface StartRedisOptions {
  /** Extra `redis-server` arguments, for a private server. */
  args?: string[];
  /** Require a server of our own (restartable); never use `REDIS_URL`. */
  private?: boolean;
}

/** A free TCP port on 127.0.0.1 (for servers a test starts itself). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilPingable(url: string, deadlineMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return;
    } catch {
      probe.disconnect();
      if (Date.now() - started > deadlineMs) throw new Error(`redis at ${url} did not answer PING within ${deadlineMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

function hasRedisServerBinary(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Servers still running when the test process exits are killed; one `exit` listener serves them all. */
const killOnExit = new Set<() => void>();
process.once('exit', () => {
  for (const kill of killOnExit) kill();
});

async function startProcess(args: string[]): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'intracom-redis-'));
  const baseArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...args];
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', baseArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    await waitUntilPingable(`redis://127.0.0.1:${port}`, 10_000);
  };
  const kill = async (): Promise<void> => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  await launch();
  const killNow = (): void => void child?.kill('SIGKILL');
  killOnExit.add(killNow);
  return {
    url: `redis://127.0.0.1:${port}`,
    kind: 'process',
    namespace: `t${randomUUID().slice(0, 8)}`,
    async stop() {
      await kill();
      killOnExit.delete(killNow);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
  };
}

async function startContainer(): Promise<TestRedis | undefined> {
  let testcontainers: typeof import('testcontainers');
  try {
    testcontainers = await import('testcontainers');
    await testcontainers.getContainerRuntimeClient();
  } catch {
    return undefined; // no Docker engine answers here: fall back to a process
  }
  const container = await new testcontainers.GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    kind: 'container',
    namespace: `t${randomUUID().slice(0, 8)}`,
    async stop() {
      await container.stop();
    },
  };
}

/** Starts (or finds) a Redis for one test file. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv && !options.private) {
    return { url: fromEnv, kind: 'env', namespace: `t${randomUUID().slice(0, 8)}`, async stop() {} };
  }
  const wantsArgs = (options.args?.length ?? 0) > 0;
  if (!wantsArgs && !options.private && process.env.INTRACOM_TEST_DOCKER !== '0') {
    const container = await startContainer();
    if (container) return container;
  }
  if (hasRedisServerBinary()) return startProcess(options.args ?? []);
  throw new Error(
    'The tests need a Redis: set REDIS_URL, or run a Docker engine (testcontainers), ' +
      'or install redis-server (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis).',
  );
}

/**
 * Gives a mocha suite a Redis for its whole run (started in `before`, stopped
 * in `after`); call the returned function inside tests to reach it.
 */
export function useRedis(options: StartRedisOptions = {}): () => TestRedis {
  let redis: TestRedis | undefined;
  before(async () => {
    redis = await startRedis(options);
  });
  after(async () => {
    await redis?.stop();
  });
  return () => {
    if (redis === undefined) throw new Error('useRedis(): the Redis is not started yet (call it inside a test or hook)');
    return redis;
  };
}
