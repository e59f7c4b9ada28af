/**
 * The intracom demo: a small system of services tells, in about ten seconds,
 * everything the library does, then prints a summary table.
 *
 *   npm run demo                                  # embedded memory route, no Redis needed
 *   npm run demo -- redis://127.0.0.1:6379        # through Redis (or set REDIS_URL):
 *                                                 # one process per service instance
 *
 * The cast: `users` (logins raise events on `module.users.events` and keep a
 * shared counter), three `worker` instances (schema set-up under a mutex,
 * durable jobs, broadcasts), the `orchestrator` and `audit` services of
 * seeds/004's flow start, and this process as `web` (the caller) and
 * `flow-repository`. The service code is in demo/services.ts.
 *
 * Exits 0 when every capability worked; otherwise 1, naming what failed.
 *
 * @runs-without-redis
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import {
  CancelledError,
  ConnectionLostError,
  NoHandlerError,
  NoServiceError,
  RedisClient,
  RedisRPCClient,
  RemoteError,
  TimeoutError,
  QueryState,
} from 'intracom';
import Redis from 'ioredis';
import { MemoryDeployment } from 'intracom/testing';
import { DEMO_SETTINGS, Demo, startInstance, type DemoConnection, type Flow, type Progress, type Role, type RunningInstance, type UserEvent } from './demo/services';

/** One line of the summary table. */
export interface SummaryRow {
  capability: string;
  route: 'memory' | 'redis';
  /** `ok`, `skipped` (with why) or `FAILED`. */
  outcome: 'ok' | 'skipped' | 'FAILED';
  result: string;
}

const say = (line: string): void => console.log(line);

/** Resolves when `predicate` holds, re-checked each time `changed()` is called; rejects after `ms` naming `what`. */
class Condition {
  private readonly waiters = new Set<() => void>();
  changed(): void {
    for (const wake of [...this.waiters]) wake();
  }
  async until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what} did not happen within ${ms} ms`));
      }, ms);
      const check = (): void => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolvePromise();
      };
      this.waiters.add(check);
    });
  }
}

/** Expects `promise` to reject with `type`; resolves with the error. */
async function expectError<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    const value = await promise;
    throw new Error(`expected ${type.name}, but it resolved with ${JSON.stringify(value)}`);
  } catch (error) {
    if (error instanceof type) return error;
    throw new Error(`expected ${type.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

/** The service instances: in this process (memory), or one child process each (Redis). */
interface Fleet {
  start(role: Role, name: string): Promise<RunningInstance['startup']>;
  /** Ends an instance abruptly: SIGKILL of its process (Redis), or closing it (memory). */
  kill(name: string): Promise<void>;
  stopAll(): Promise<void>;
}

function memoryFleet(connection: DemoConnection): Fleet {
  const instances = new Map<string, RunningInstance>();
  return {
    async start(role, name) {
      const instance = await startInstance(role, name, connection);
      instances.set(name, instance);
      return instance.startup;
    },
    async kill(name) {
      await instances.get(name)?.close();
      instances.delete(name);
    },
    async stopAll() {
      await Promise.all([...instances.values()].map((i) => i.close()));
      instances.clear();
    },
  };
}

function processFleet(redisUrl: string, namespace: string): Fleet {
  const children = new Map<string, ChildProcess>();
  const root = resolve(__dirname, '..', '..');
  return {
    async start(role, name) {
      const child = fork(join(__dirname, 'demo', 'instance.ts'), [], {
        cwd: root,
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, DEMO_ROLE: role, DEMO_NAME: name, REDIS_URL: redisUrl, DEMO_NAMESPACE: namespace },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.set(name, child);
      const ready = new Promise<RunningInstance['startup']>((resolvePromise, reject) => {
        child.on('message', (message: { ready?: string; startup: RunningInstance['startup'] }) => {
          if (message.ready === name) resolvePromise(message.startup);
        });
        child.once('exit', (code) => reject(new Error(`instance ${name} exited with ${code} before it was ready`)));
        setTimeout(() => reject(new Error(`instance ${name} was not ready within 15 s`)), 15_000).unref();
      });
      return ready;
    },
    async kill(name) {
      const child = children.get(name);
      children.delete(name);
      if (!child || child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
    async stopAll() {
      await Promise.all(
        [...children.values()].map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          const force = setTimeout(() => child.kill('SIGKILL'), 3000);
          child.send({ stop: true });
          await exited;
          clearTimeout(force);
        }),
      );
      children.clear();
    },
  };
}

/** Runs the whole story on the memory route (no URL) or on Redis; resolves with the summary rows. */
export async function main(redisUrl?: string): Promise<SummaryRow[]> {
  const route = redisUrl ? 'redis' : 'memory';
  const namespace = `demo${process.pid}`;
  const connection: DemoConnection = redisUrl ? { redis: redisUrl, namespace } : new MemoryDeployment().options;
  const fleet = redisUrl ? processFleet(redisUrl, namespace) : memoryFleet(connection);
  const rows: SummaryRow[] = [];
  const step = async (capability: string, run: () => Promise<string | { skipped: string }>): Promise<void> => {
    try {
      const result = await run();
      const row: SummaryRow = typeof result === 'string' ? { capability, route, outcome: 'ok', result } : { capability, route, outcome: 'skipped', result: result.skipped };
      rows.push(row);
      say(`  ${row.outcome === 'ok' ? '✔' : '–'} ${capability}: ${row.result}`);
    } catch (error) {
      rows.push({ capability, route, outcome: 'FAILED', result: error instanceof Error ? error.message : String(error) });
      say(`  ✘ ${capability}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  say(`route: ${route}${redisUrl ? ` (${redisUrl}, namespace ${namespace}; one process per service instance)` : ' (in this process, no Redis)'}`);
  const web = new RedisRPCClient({ service: 'web', instanceId: 'web-1', ...connection, ...DEMO_SETTINGS, queues: { consume: false } });
  const repository = new RedisClient({ service: 'flow-repository', instanceId: 'flow-repository-1', ...connection, registry: DEMO_SETTINGS.registry });
  const progress: Progress[] = [];
  const progressed = new Condition();

  try {
    // ---- the cast comes up ----
    const started = Date.now();
    await Promise.all([web.connect(), repository.connect()]);
    await web.client.subscribe<Progress>(Demo.topics.Progress.name, (event) => {
      progress.push(event);
      progressed.changed();
    });
    const cast: Array<[Role, string]> = [
      ['users', 'users-1'],
      ['worker', 'worker-1'],
      ['worker', 'worker-2'],
      ['worker', 'worker-3'],
      ['orchestrator', 'orchestrator-1'],
      ['audit', 'audit-1'],
    ];
    const startups = await Promise.all(cast.map(([role, name]) => fleet.start(role, name)));
    say(`started ${cast.map(([, name]) => name).join(', ')} in ${Date.now() - started} ms`);

    // ---- 1. shared variables, a watch, and OpenTera-style events ----
    say('\n1. Users log in and out: events on module.users.events, a shared counter, a watch');
    const counts: number[] = [];
    const events: string[] = [];
    await web.client.watch(Demo.vars.OnlineCount, ({ value }) => {
      counts.push(value ?? 0);
      progressed.changed();
    });
    await web.client.subscribe<UserEvent>(Demo.topics.UsersEvents.name, (event, { headers }) => {
      events.push(`${event.type} ${event.user} (from ${headers.serviceName})`);
      progressed.changed();
    });
    await web.callService('users', 'login', 'alice');
    await web.callService('users', 'login', 'bob');
    await web.callService('users', 'logout', 'alice');
    const heard = progressed.until(() => counts.length >= 3 && events.length >= 3, 3000, 'three watched changes and three events');
    await step('shared variable + watch', async () => {
      await heard;
      const value = await web.client.get(Demo.vars.OnlineCount);
      if (value !== 1 || counts.join() !== '1,2,1') throw new Error(`OnlineCount is ${value}, watched ${counts.join(' → ')}`);
      return `OnlineCount watched ${counts.join(' → ')}; get() = ${value}`;
    });
    await step('events (module.users.events)', async () => {
      await heard;
      return events.join(', ');
    });

    // ---- 2. calls between services, and each way one can fail ----
    say('\n2. web calls users: a result, or an error class for each failure');
    await step('RPC callService', async () => `online_users() = ${JSON.stringify(await web.callService('users', 'online_users'))}`);
    await step('TimeoutError', async () => {
      const t0 = Date.now();
      const error = await expectError(web.with({ timeoutMs: 300 }).callService('users', 'slow', 3000), TimeoutError);
      return `slow(3000) with timeoutMs 300 → ${error.name} after ${Date.now() - t0} ms`;
    });
    await step('NoHandlerError', async () => {
      const error = await expectError(web.callService('users', 'delete_everyone'), NoHandlerError);
      return `delete_everyone() → ${error.name} at once; users exposes ${error.available.filter((f) => !f.startsWith('$')).join(', ')}`;
    });
    await step('NoServiceError', async () => {
      const error = await expectError(web.callService('billing', 'charge', 10), NoServiceError);
      return `billing.charge() → ${error.name} at once (no instance of billing)`;
    });
    await step('RemoteError', async () => {
      const error = await expectError(web.callService('users', 'logout', 'carol'), RemoteError);
      return `logout("carol") → ${error.name} (${error.remoteName}: ${error.remoteMessage})`;
    });
    await step('CancelledError', async () => {
      const controller = new AbortController();
      const before = progress.length;
      const call = web.with({ signal: controller.signal }).callService('users', 'slow', 5000);
      await progressed.until(() => progress.slice(before).some((p) => p.kind === 'slow-started'), 3000, 'the slow handler starting');
      controller.abort();
      const error = await expectError(call, CancelledError);
      return `slow(5000), aborted once running → ${error.name}; the handler's signal fired`;
    });

    // ---- 3. ASYNC and SYNC queries ----
    say('\n3. Queries of the integration layer: ASYNC and SYNC');
    await step('ASYNC', async () => {
      const handle = web.sendAsync<{ rows: number }>('users', 'export-report', { format: 'csv' });
      const first = handle.state;
      await handle.promise;
      if (first !== QueryState.PENDING || handle.state !== QueryState.DONE) throw new Error(`state went ${first} → ${handle.state} (${handle.error?.message ?? ''})`);
      return `export-report: handle ${first} → ${handle.state}, result ${JSON.stringify(handle.result)}`;
    });
    await step('SYNC', async () => `count-online → ${JSON.stringify(await web.sendSync('users', 'count-online'))}`);

    // ---- 4. BROADCAST ----
    say('\n4. A BROADCAST reaches every worker instance');
    await step('BROADCAST', async () => {
      const before = progress.length;
      await web.broadcast('worker', 'reload-config', { version: 2 });
      const reached = (): Set<string> => new Set(progress.slice(before).flatMap((p) => (p.kind === 'broadcast' ? [p.instance] : [])));
      await progressed.until(() => reached().size === 3, 5000, 'the broadcast reaching worker-1, worker-2 and worker-3');
      return `reload-config reached ${[...reached()].sort().join(', ')} (3/3 instances)`;
    });

    // ---- 5. schema initialisation under the mutex ----
    say('\n5. Three workers started together; the schema was initialised under a mutex');
    await step('mutex: schema init runs once', async () => {
      const workers = startups.filter((_, i) => cast[i][0] === 'worker');
      const ran = workers.filter((s) => s.schema === 'ran').length;
      const runs = await web.client.get(Demo.vars.SchemaInitRuns);
      if (ran !== 1 || runs !== 1) throw new Error(`initialisation ran ${ran} times (SchemaInitRuns = ${runs})`);
      return `3 workers raced: 1 initialised (SchemaInitRuns = 1), 2 waited on the mutex and found it done`;
    });

    // ---- 6. FIRE_AND_FORGET survives a dying instance; ConnectionLostError ----
    say(`\n6. 20 durable jobs; worker-2 ${redisUrl ? 'is killed (SIGKILL)' : 'is closed'} mid-way`);
    const jobs = 20;
    const before = progress.length;
    const done = (): Array<Extract<Progress, { kind: 'job-done' }>> => progress.slice(before).flatMap((p) => (p.kind === 'job-done' ? [p] : []));
    let lost: Promise<ConnectionLostError> | undefined;
    if (redisUrl) {
      // a call held by worker-2 when it dies: the caller must learn at once, not after its timeout
      lost = expectError(web.with({ timeoutMs: 8000 }).call(`worker-2`, 'hang'), ConnectionLostError);
      lost.catch(() => undefined);
      await progressed.until(() => progress.slice(before).some((p) => p.kind === 'hang-started'), 3000, 'worker-2 taking the call');
    }
    for (let job = 1; job <= jobs; job++) await web.fireAndForget('worker', 'resize', { job });
    await progressed.until(() => done().some((p) => p.instance === 'worker-2'), 5000, 'worker-2 finishing a job');
    const killedAt = Date.now();
    await fleet.kill('worker-2');
    await step('ConnectionLostError', async () => {
      if (!lost) return { skipped: 'Redis only: needs an instance process to die mid-call; run `npm run demo -- redis://127.0.0.1:6379`' };
      const error = await lost;
      return `hang() on worker-2 → ${error.name} ${Date.now() - killedAt} ms after the kill`;
    });
    await step('FIRE_AND_FORGET survives a lost instance', async () => {
      const distinct = (): Set<number> => new Set(done().map((p) => p.job));
      await progressed.until(() => distinct().size === jobs, 8000, `all ${jobs} jobs being processed`);
      const byWorker = new Map<string, number>();
      for (const p of done()) byWorker.set(p.instance, (byWorker.get(p.instance) ?? 0) + 1);
      const redelivered = new Set(done().filter((p) => p.attempt > 1).map((p) => p.job)).size;
      const after = done().filter((p) => p.instance === 'worker-2').length;
      return (
        `${distinct().size}/${jobs} jobs processed (${[...byWorker].sort().map(([w, n]) => `${w}: ${n}`).join(', ')}); ` +
        `worker-2 ${redisUrl ? 'killed' : 'closed'} after ${after}; ${redelivered} of its jobs redelivered to the others`
      );
    });

    // ---- 7. seeds/004: starting a flow, with an audit log ----
    say('\n7. Starting a flow (seeds/004): flow.starting → orchestrator → flow.started; audit listens to audit.*');
    await step('flow start chain + audit.*', async () => {
      const flow: Flow = { id: 'flow-58b41f5d', name: 'sync contacts', cron: null };
      let startedEvent: (() => void) | undefined;
      const flowStarted = new Promise<void>((resolvePromise) => (startedEvent = resolvePromise));
      await repository.subscribe<{ flowId: string }>(Demo.topics.FlowStarted.name, async ({ flowId }, { headers }) => {
        if (flowId !== flow.id) return;
        await repository.set(Demo.vars.FlowStatus, flowId, 'started');
        await repository.publish('audit.flow-repository.status', { flowId, status: 'started', after: headers.serviceName });
        startedEvent?.();
      });
      await repository.set(Demo.vars.FlowStatus, flow.id, 'starting');
      await repository.publish('audit.flow-repository.status', { flowId: flow.id, status: 'starting' });
      const receivers = await repository.publish(Demo.topics.FlowStarting.name, flow);
      await Promise.race([flowStarted, new Promise((_, reject) => setTimeout(() => reject(new Error('flow.started did not come within 3 s')), 3000).unref())]);
      const status = await repository.get(Demo.vars.FlowStatus, flow.id);
      const records = await web.with({ timeoutMs: 3000 }).callService<Array<{ topic: string; from: string }>>('audit', 'records', 4);
      if (status !== 'started') throw new Error(`flow status is ${status}`);
      return `flow.starting (${receivers} receiver) → orchestrator deployed → flow.started → status "${status}"; audit logged ${records.length}: ${records.map((r) => r.topic.replace(/^audit\./, '')).join(', ')}`;
    });
  } catch (error) {
    rows.push({ capability: 'demo', route, outcome: 'FAILED', result: error instanceof Error ? error.message : String(error) });
  } finally {
    await fleet.stopAll().catch(() => undefined);
    if (redisUrl) {
      // leave nothing behind in the Redis we were given
      const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
      redis.on('error', () => undefined);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      } catch {
        // best effort: the demo's keys carry a namespace of their own
      } finally {
        redis.disconnect();
      }
    }
    await Promise.allSettled([web.close(), repository.close()]);
  }
  return rows;
}

/** The summary as an aligned table. */
export function renderSummary(rows: SummaryRow[]): string {
  const table = [['capability', 'route', 'result'], ...rows.map((r) => [r.capability, r.route, r.outcome === 'ok' ? r.result : `${r.outcome}: ${r.result}`])];
  const widths = [0, 1].map((i) => Math.max(...table.map((row) => row[i].length)));
  const line = (row: string[]): string => `| ${row[0].padEnd(widths[0])} | ${row[1].padEnd(widths[1])} | ${row[2]}`;
  return [line(table[0]), `|${'-'.repeat(widths[0] + 2)}|${'-'.repeat(widths[1] + 2)}|${'-'.repeat(8)}`, ...table.slice(1).map(line)].join('\n');
}

/** What `npm run demo -- --help` prints. */
export const DEMO_USAGE = `Usage: npm run demo -- [redis-url]

Runs a small system of services and prints what each capability of intracom did.

  npm run demo                              embedded memory route, no Redis needed
  npm run demo -- redis://127.0.0.1:6379    through Redis (or set REDIS_URL), one process per instance

Exits 0 when every capability worked, 1 naming what failed, 2 on a bad argument.
`;

/** The Redis URL to use from the arguments and REDIS_URL, or why the arguments are refused. */
export function demoArguments(argv: string[], env: NodeJS.ProcessEnv): { help: true } | { url: string | undefined } | { error: string } {
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return { help: true };
  if (argv.length > 1) return { error: `expected at most one argument (a Redis URL); received ${argv.length}` };
  const url = argv[0] ?? env.REDIS_URL;
  if (url !== undefined && !/^rediss?:\/\//.test(url)) return { error: `the argument must be a Redis URL (redis:// or rediss://); received ${JSON.stringify(url)}` };
  return { url };
}

if (require.main === module) {
  process.env.INTRACOM_LOG_LEVEL ??= 'error'; // the story is the output; warnings (a handler still running at close) would only clutter it
  const parsed = demoArguments(process.argv.slice(2), process.env);
  if ('help' in parsed) {
    process.stdout.write(DEMO_USAGE);
    process.exit(0);
  }
  if ('error' in parsed) {
    process.stderr.write(`demo: ${parsed.error}\n\n${DEMO_USAGE}`);
    process.exit(2);
  }
  const url = parsed.url;
  const started = Date.now();
  const deadline = setTimeout(() => {
    console.error('demo failed: it did not finish within 40 s');
    process.exit(1);
  }, 40_000);
  deadline.unref();
  main(url).then(
    (rows) => {
      console.log(`\nSummary (${((Date.now() - started) / 1000).toFixed(1)} s)\n${renderSummary(rows)}`);
      const failed = rows.filter((r) => r.outcome === 'FAILED');
      if (failed.length > 0) {
        console.error(`demo failed: ${failed.map((r) => `${r.capability}: ${r.result}`).join('; ')}`);
        process.exit(1);
      }
      process.exit(0);
    },
    (error: unknown) => {
      console.error(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
}
