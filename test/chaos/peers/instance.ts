/**
 * One instance process of the chaos run: serves RPC (`echo`), handles
 * durable queries (`work` FIRE_AND_FORGET, `bcast` BROADCAST), subscribes to
 * the shared event topic, and puts steady load on the others (events, calls,
 * durable sends, the mutex). What it processed is written to the ledger, a
 * Redis of its own that no fault touches, so a SIGKILL cannot lose the count;
 * what it sent is reported to the runner over IPC once stored.
 *
 * Environment: REDIS_URL, LEDGER_URL, NAMESPACE, SERVICE, INSTANCE_ID,
 * SERVICES (comma-separated), RPC_TIMEOUT_MS, TICK_MS.
 */
import { performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import Redis from 'ioredis';
import { RedisMutex } from '../../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`chaos instance: ${name} is not set`);
  return value;
};
const service = env('SERVICE');
const instanceId = env('INSTANCE_ID');
const services = env('SERVICES').split(',');
const rpcTimeoutMs = Number(env('RPC_TIMEOUT_MS'));
const tickMs = Number(env('TICK_MS'));
/** Extra time a call may take past its timeout before it counts as unsettled (documented in docs/operations.md). */
const SETTLE_SLACK_MS = Number(process.env.SETTLE_SLACK_MS ?? 1000);

const ledger = new Redis(env('LEDGER_URL'));
const rpc = new RedisRPCClient({
  service,
  instanceId,
  redis: env('REDIS_URL'),
  namespace: env('NAMESPACE'),
  timeoutMs: rpcTimeoutMs,
  closeTimeoutMs: 1000,
  queryGraceMs: 0,
  registry: { heartbeatMs: 250, ttlMs: 1500 },
  queues: { visibilityTimeoutMs: 4000, blockMs: 250, batchSize: 20 },
});
const mutex = new RedisMutex({ redis: rpc.client, commandTimeoutMs: 2000, closeTimeoutMs: 500 });

let phase = 'start';
let loading = false;
let seq = 0;
let tick: NodeJS.Timeout | undefined;

const report = {
  eventsSent: {} as Record<string, number>,
  eventsReceived: {} as Record<string, number>,
  rpc: { calls: 0, ok: 0, withinBound: 0, longestMs: 0, errors: {} as Record<string, number>, byPhase: {} as Record<string, number> },
  ffSent: [] as string[],
  bcSent: [] as Array<[string, string]>,
  sendErrors: {} as Record<string, number>,
  mutex: { taken: 0, errors: {} as Record<string, number> },
};

const bump = (table: Record<string, number>, key: string, by = 1): void => void (table[key] = (table[key] ?? 0) + by);
const errorName = (error: unknown): string => (error instanceof Error ? error.name : typeof error);

/** Heap after a full collection when the runner allowed one (--expose-gc). */
function liveMemory(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}

function flushReport(final = false): void {
  const stats = rpc.client.stats();
  const memory = final ? liveMemory() : process.memoryUsage();
  process.send?.({ ev: final ? 'final' : 'report', instanceId, phase, ...report, client: stats, memory: { heapUsed: memory.heapUsed, rss: memory.rss } });
  report.ffSent = [];
  report.bcSent = [];
}

function loadOnce(): void {
  if (!loading || rpc.client.status !== 'ready') return;
  seq += 1;
  const at = phase;
  rpc.client.publish('chaos.events', { src: instanceId, seq, phase: at }).then(
    () => bump(report.eventsSent, at),
    (error: unknown) => bump(report.sendErrors, `publish ${errorName(error)}`),
  );
  const target = services[seq % services.length];
  const started = performance.now();
  report.rpc.calls += 1;
  const settle = (error: unknown): void => {
    const took = performance.now() - started;
    report.rpc.longestMs = Math.max(report.rpc.longestMs, took);
    if (took <= rpcTimeoutMs + SETTLE_SLACK_MS) report.rpc.withinBound += 1;
    if (error === undefined) report.rpc.ok += 1;
    else bump(report.rpc.errors, errorName(error));
    bump(report.rpc.byPhase, `${at} ${error === undefined ? 'ok' : errorName(error)}`);
  };
  rpc.callService(target, 'echo', seq).then(
    () => settle(undefined),
    (error: unknown) => settle(error),
  );
  rpc.fireAndForget(target, 'work', { phase: at }).then(
    (query) => report.ffSent.push(query.queryId),
    (error: unknown) => bump(report.sendErrors, `fireAndForget ${errorName(error)}`),
  );
  if (seq % 10 === 0) {
    rpc.broadcast(target, 'bcast', { phase: at }).then(
      (query) => report.bcSent.push([query.queryId, target]),
      (error: unknown) => bump(report.sendErrors, `broadcast ${errorName(error)}`),
    );
  }
  if (seq % 20 === 0) {
    mutex
      .withMutex('chaos', () => new Promise((resolve) => setTimeout(resolve, 5)), { waitMs: 1000, timeoutMs: 2000 })
      .then(
        () => void (report.mutex.taken += 1),
        (error: unknown) => bump(report.mutex.errors, errorName(error)),
      );
  }
}

async function main(): Promise<void> {
  await rpc.expose('echo', ([value]: [unknown]) => value);
  rpc.handle('work', async (query, context) => {
    const sentIn = typeof (query as { phase?: unknown })?.phase === 'string' ? (query as { phase: string }).phase : 'unknown';
    await ledger.multi().hincrby('ff', context.queryId, 1).hsetnx('ffphase', context.queryId, sentIn).exec();
  });
  rpc.handle('bcast', async (_query, context) => {
    await ledger.hincrby('bc', `${context.queryId}|${instanceId}`, 1);
  });
  await rpc.connect();
  await rpc.client.subscribe('chaos.events', (payload) => {
    const event = payload as { phase?: unknown };
    bump(report.eventsReceived, typeof event?.phase === 'string' ? event.phase : 'unknown');
  });
  setInterval(() => flushReport(), 500).unref();
  process.on('message', (message: { cmd: string; phase?: string }) => {
    if (message.cmd === 'phase') phase = message.phase as string;
    else if (message.cmd === 'memory') process.send?.({ ev: 'memory', heapUsed: liveMemory().heapUsed });
    else if (message.cmd === 'snapshot') {
      liveMemory();
      process.send?.({ ev: 'snapshot', file: writeHeapSnapshot((message as { file?: string }).file) });
    }
    else if (message.cmd === 'load') {
      loading = true;
      tick ??= setInterval(loadOnce, tickMs);
    } else if (message.cmd === 'stop-load') {
      loading = false;
      if (tick) clearInterval(tick);
      tick = undefined;
      // let the last sends settle, then report
      setTimeout(() => {
        flushReport(true);
      }, rpcTimeoutMs + SETTLE_SLACK_MS);
    } else if (message.cmd === 'close') {
      void (async () => {
        await mutex.close();
        await rpc.close();
        ledger.disconnect();
        process.send?.({ ev: 'closed' }, () => process.exit(0));
      })();
    }
  });
  process.send?.({ ev: 'ready', instanceId, pid: process.pid, memory: liveMemory().heapUsed });
}

process.on('disconnect', () => process.exit(0));
main().catch((error: unknown) => {
  console.error('chaos instance failed to start', error);
  process.exit(2);
});
