/**
 * Scenarios `fire-and-forget` (one consumer process: queries/s from send to
 * processed, p50/p99 of send-to-processing) and `broadcast` (three consumer
 * processes: deliveries/s), intracom's durable queries against the minimal
 * hand-written Redis Streams loop (XADD; XREADGROUP COUNT 100 BLOCK; one
 * XACK per batch; for broadcast, one group per consumer), same run, same
 * server. Both sides run under the same credit window, so nothing piles up
 * beyond it.
 *
 * `reference` is a second, competent baseline: the same loop with batched
 * XADD (the queries of one tick appended as one entry holding a msgpack
 * array, flushed from a microtask).
 *
 * Each system then runs paced phases, whose lines are named
 * `<kind>@half-load` (sends at half the baseline's saturated rate of this
 * run, spread over 1 ms steps), `<kind>@half-own` (half the system's own
 * saturated rate; the baseline's is its half-load) and `<kind>@lone` (one
 * query every 10 ms): there p50/p99 are the latency of every query from send
 * to processing, the measure of whether batching makes a query wait.
 */
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { spawnPeer, type Peer } from '../../support/processes';
import { result, selectedSystems, type BenchContext, type BenchResult, type Scenario } from '../harness';

const WINDOW = 5_000;
const CHUNK = 200;

type Kind = 'fire-and-forget' | 'broadcast';
type System = 'intracom' | 'baseline' | 'reference';
/** The paced phases' length, in ms. */
const PACED_MS = 1500;
/** The lone phase's pace: one query every this many ms. */
const LONE_EVERY_MS = 10;

interface Producer {
  send(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function measure(kind: Kind, system: System, context: BenchContext, durationMs: number, halfLoadPerS: (saturated: BenchResult) => number): Promise<BenchResult[]> {
  const consumers = kind === 'broadcast' ? 3 : 1;
  const run = `${kind}-${Date.now()}`;
  const service = `bench-${run}`;
  const stream = `${context.namespace}:bench-baseline:${run}`;
  const peers: Peer[] = [];
  for (let c = 0; c < consumers; c++) {
    peers.push(
      spawnPeer('test/bench/peers/queue-consumer.ts', {
        BENCH_SYSTEM: system,
        BENCH_REDIS_URL: context.redisUrl,
        BENCH_NAMESPACE: context.namespace,
        BENCH_SERVICE: service,
        BENCH_INSTANCE: `consumer-${c}`,
        BENCH_STREAM: stream,
        BENCH_GROUP: kind === 'broadcast' ? `g${c}` : 'g',
      }),
    );
  }
  await Promise.all(peers.map((p) => p.next((m: { ev: string }) => m.ev === 'ready', 30_000)));

  let producer: Producer;
  if (system === 'intracom') {
    const rpc = new RedisRPCClient({ service: `${service}-producer`, redis: context.redisUrl, namespace: context.namespace, queues: { consume: false } });
    await rpc.connect();
    const t = () => performance.timeOrigin + performance.now();
    producer = {
      send: (i) => (kind === 'broadcast' ? rpc.broadcast(service, 'work', { i, t: t() }) : rpc.fireAndForget(service, 'work', { i, t: t() })),
      close: () => rpc.close(),
    };
  } else if (system === 'baseline') {
    const packr = new Packr();
    const redis = new Redis(context.redisUrl);
    producer = {
      send: (i) => redis.xadd(stream, '*', 'm', packr.pack({ i, t: performance.timeOrigin + performance.now() })),
      close: async () => void redis.disconnect(),
    };
  } else {
    // batched XADD: the queries of one tick go as one entry, flushed from a microtask
    const packr = new Packr();
    const redis = new Redis(context.redisUrl);
    let pending: Array<{ i: number; t: number }> = [];
    let flushed: Promise<unknown> | undefined;
    producer = {
      send: (i) => {
        pending.push({ i, t: performance.timeOrigin + performance.now() });
        flushed ??= new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
          const batch = pending;
          pending = [];
          flushed = undefined;
          return redis.xadd(stream, '*', 'm', packr.pack(batch));
        });
        return flushed;
      },
      close: async () => void redis.disconnect(),
    };
  }

  const admin = new Redis(context.redisUrl);
  const redisCpu = async (): Promise<number> => {
    const info = await admin.info('cpu');
    const field = (name: string) => Number(/^name:([\d.]+)/m.exec(info.replace(name, 'name'))?.[1] ?? 0);
    return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
  };
  // BENCH_DEBUG: Redis's time per command (INFO commandstats), what each system's round trips cost the server
  const commandStats = async (): Promise<Map<string, { calls: number; usec: number }>> => {
    const stats = new Map<string, { calls: number; usec: number }>();
    for (const [, name, calls, usec] of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(name, { calls: Number(calls), usec: Number(usec) });
    return stats;
  };
  const statsBefore = process.env.BENCH_DEBUG ? await commandStats() : undefined;
  const redisCpuBefore = await redisCpu();
  const producerCpuBefore = process.cpuUsage();
  const acknowledged = peers.map(() => 0);
  peers.forEach((peer, index) =>
    peer.child.on('message', (m: { ev: string; received?: number }) => {
      if (m.ev === 'progress' && m.received !== undefined) acknowledged[index] = m.received;
    }),
  );
  const started = process.hrtime.bigint();
  const deadline = performance.now() + durationMs;
  let sent = 0;
  while (performance.now() < deadline) {
    const chunk: Array<Promise<unknown>> = [];
    for (let k = 0; k < CHUNK; k++) chunk.push(producer.send(sent++));
    await Promise.all(chunk);
    while (sent - Math.min(...acknowledged) > WINDOW) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const finished = await Promise.all(peers.map((p) => p.ask<{ received: number; latencies: number[]; cpuMs: number }>({ cmd: 'expect', total: sent }, 'finished', 120_000)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const producerCpu = process.cpuUsage(producerCpuBefore);
  const redisCpuMs = (await redisCpu()) - redisCpuBefore;
  const commands: Record<string, string> = {};
  if (statsBefore !== undefined) {
    for (const [name, after] of await commandStats()) {
      const before = statsBefore.get(name) ?? { calls: 0, usec: 0 };
      if (after.calls > before.calls) commands[name] = `${after.calls - before.calls} calls, ${after.usec - before.usec} us`;
    }
  }
  admin.disconnect();
  const deliveries = finished.reduce((sum, f) => sum + f.received, 0);
  // CPU per delivery, in µs, by process: where the time goes on a machine whose cores all three share
  const perDelivery = (ms: number) => Math.round((ms * 1000) / Math.max(1, deliveries) * 100) / 100;
  const saturated = result(kind, system, deliveries, elapsedMs, finished.flatMap((f) => f.latencies), {
    queries: sent,
    consumers,
    lost: sent * consumers - deliveries,
    cpu_us_producer: perDelivery((producerCpu.user + producerCpu.system) / 1000),
    cpu_us_consumers: perDelivery(finished.reduce((sum, f) => sum + f.cpuMs, 0)),
    cpu_us_redis: perDelivery(redisCpuMs),
    ...(process.env.BENCH_DEBUG ? { consumer_stats: finished.map((f) => (f as { stats?: unknown }).stats), commandstats: commands } : {}),
  });

  // paced phases: every query timed, at half the baseline's saturated rate and alone
  const results = [saturated];
  const ownHalf = saturated.ops_per_s / (2 * consumers);
  const phases: Array<[string, number]> = [['half-load', halfLoadPerS(saturated)], ['lone', 1000 / LONE_EVERY_MS]];
  if (system !== 'baseline') phases.splice(1, 0, ['half-own', ownHalf]);
  for (const [phase, perS] of phases) {
    for (const peer of peers) peer.send({ cmd: 'reset' });
    await Promise.all(peers.map((peer) => peer.ask({ cmd: 'ping' }, 'pong', 30_000)));
    const sends: Array<Promise<unknown>> = [];
    const phaseStart = performance.now();
    let phaseSent = 0;
    while (performance.now() - phaseStart < PACED_MS) {
      const due = Math.floor(((performance.now() - phaseStart) * perS) / 1000);
      while (phaseSent < due) sends.push(producer.send(sent + phaseSent++));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(sends);
    const paced = await Promise.all(peers.map((p) => p.ask<{ received: number; latencies: number[] }>({ cmd: 'expect', total: phaseSent }, 'finished', 120_000)));
    sent += phaseSent;
    results.push(result(`${kind}@${phase}`, system, paced.reduce((sum, f) => sum + f.received, 0), PACED_MS, paced.flatMap((f) => f.latencies), { offered_per_s: Math.round(perS), consumers }));
  }
  await producer.close();
  for (const peer of peers) peer.send({ cmd: 'exit' });
  await Promise.all(peers.map((p) => Promise.race([p.exited(), new Promise((resolve) => setTimeout(resolve, 2000))])));
  await Promise.all(peers.map((p) => p.kill()));
  return results;
}

export const scenario: Scenario = {
  name: 'queues',
  async run(context) {
    const durationMs = Math.max(1000, 4000 * context.scale);
    const results: BenchResult[] = [];
    for (const kind of ['fire-and-forget', 'broadcast'] as const) {
      // half the baseline's saturated rate (queries/s; a broadcast delivery counts once per consumer)
      // (BENCH_SYSTEMS=intracom alone paces at half its own rate)
      let halfLoad = 0;
      const pace = (saturated: BenchResult): number => (halfLoad ||= saturated.ops_per_s / (2 * Number(saturated.consumers)));
      for (const system of selectedSystems(['baseline', 'reference', 'intracom'] as const)) results.push(...(await measure(kind, system, context, durationMs, pace)));
    }
    // saturated lines first, then the paced phases of each kind
    return [...results.filter((r) => !r.scenario.includes('@')), ...results.filter((r) => r.scenario.includes('@'))];
  },
};
