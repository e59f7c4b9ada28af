/**
 * Scenarios `fire-and-forget` (one consumer process: queries/s from send to
 * processed, p50/p99 of send-to-processing) and `broadcast` (three consumer
 * processes: deliveries/s), intracom's durable queries against the minimal
 * hand-written Redis Streams loop, same run, same server. Systems:
 * - `baseline`: XADD of one msgpackr `{ i, t }` per query; XREADGROUP COUNT
 *   100 BLOCK; one XACK per batch (for broadcast, one group per consumer);
 * - `control`: the baseline's code again, in processes of its own: its ratio
 *   to the baseline is what the line reads by noise alone;
 * - `reference`: a second, competent baseline, the same loop with batched
 *   XADD (the queries of one tick appended as one entry holding a msgpack
 *   array, flushed from a microtask);
 * - `intracom`: RedisRPCClient.fireAndForget (or broadcast) to a service
 *   whose instances handle action `work`, default options.
 *
 * Each system has a producer process (test/bench/peers/queue-producer.ts)
 * and its consumer processes (queue-consumer.ts), with a stream, groups and
 * service of its own; every system's processes are alive at once and the
 * bench process only orchestrates (it relays the consumers' progress to the
 * producer as credit: at most 5,000 queries sent and not yet received by
 * every consumer, so nothing piles up beyond that; `lost` must be 0). Each
 * system first runs the same work untimed for 1 s, then the systems run in
 * alternating rounds (the order turning every round), each round sending for
 * a fixed time and ending when every consumer has every query.
 *
 * Each system then runs paced phases in its own processes, whose lines are
 * named `<kind>@half-load` (sends at half the baseline's saturated rate of
 * this run, spread over 1 ms steps), `<kind>@half-own` (half the system's own
 * saturated rate; not for the baseline and the control, whose half-load it
 * is) and `<kind>@lone` (one query every 10 ms): there p50/p99 are the
 * latency of every query from send to processing (of one in 2, 4, ... where
 * a phase sends more than about 20,000: `sampled_every`), the measure of
 * whether batching makes a query wait.
 *
 * `cpu_us_*` is the CPU time per delivery of the producer, the consumers
 * (together) and Redis over the measured rounds.
 */
import Redis from 'ioredis';
import { performance } from 'node:perf_hooks';
import { spawnPeer, type Peer } from '../../support/processes';
import { redisCpuMs, result, roundOrder, selectedSystems, stopPeers, type BenchContext, type BenchResult, type Scenario } from '../harness';

type Kind = 'fire-and-forget' | 'broadcast';
type System = 'baseline' | 'control' | 'reference' | 'intracom';
/** The systems, in their first round's order; BENCH_SYSTEMS=intracom,... runs only those. */
const SYSTEMS = selectedSystems<System>(['baseline', 'control', 'reference', 'intracom']);
const ROUNDS = 3;
/** The paced phases' length, in ms. */
const PACED_MS = 1500;
/** The lone phase's pace: one query every this many ms. */
const LONE_EVERY_MS = 10;
/**
 * Latency samples a paced phase takes, about, at the most: beyond that the
 * consumers time one query in 2, 4, ... (timing and shipping every query of a
 * fast system's half-own phase, a million and more, costs its processes more
 * than the queries, and the phases after it pay for it).
 */
const PACED_SAMPLES = 20_000;

/** One system's processes. */
interface Rig {
  producer: Peer;
  consumers: Peer[];
}

/** What a consumer answers to `expect`. */
interface Finished {
  received: number;
  latencies: number[];
  cpuMs: number;
  stats?: unknown;
}

interface Sample {
  sent: number;
  deliveries: number;
  elapsedMs: number;
  latencies: number[];
  cpuMs: { producer: number; consumers: number; redis: number };
  /** BENCH_DEBUG: Redis's calls and µs per command over the round. */
  commands?: Map<string, { calls: number; usec: number }>;
  /** BENCH_DEBUG: the intracom consumers' counters since they started. */
  consumerStats?: unknown[];
}

/** Queries each system's producer sent, and each of its consumers received, since they started. */
interface Totals {
  sent: number;
  received: number[];
}

const consumersOf = (kind: Kind): number => (kind === 'broadcast' ? 3 : 1);

async function startRig(context: BenchContext, kind: Kind, system: System, run: string, started: Peer[]): Promise<Rig> {
  const env = {
    BENCH_SYSTEM: system,
    BENCH_KIND: kind,
    BENCH_REDIS_URL: context.redisUrl,
    BENCH_NAMESPACE: context.namespace,
    BENCH_SERVICE: `bench-${system}-${run}`,
    BENCH_STREAM: `${context.namespace}:bench-${system}:${run}`,
  };
  const spawn = (file: string, extra: Record<string, string> = {}) => {
    const peer = spawnPeer(file, { ...env, ...extra });
    started.push(peer);
    return peer;
  };
  const ready = (peer: Peer) => peer.next((m: { ev: string }) => m.ev === 'ready', 120_000);
  const consumers = Array.from({ length: consumersOf(kind) }, (_, c) =>
    spawn('test/bench/peers/queue-consumer.ts', { BENCH_INSTANCE: `consumer-${c}`, BENCH_GROUP: kind === 'broadcast' ? `g${c}` : 'g' }),
  );
  const producer = spawn('test/bench/peers/queue-producer.ts');
  await Promise.all([producer, ...consumers].map(ready));
  // the consumers' progress is the producer's credit
  const received = consumers.map(() => 0);
  consumers.forEach((consumer, index) =>
    consumer.child.on('message', (m: { ev: string; received?: number }) => {
      if ((m.ev !== 'progress' && m.ev !== 'finished') || m.received === undefined) return;
      received[index] = m.received;
      if (producer.child.connected) producer.send({ cmd: 'credit', received: Math.min(...received) });
    }),
  );
  return { producer, consumers };
}

/** BENCH_DEBUG: Redis's time per command (INFO commandstats), what each system's round trips cost the server. */
async function commandStats(admin: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const [, name, calls, usec] of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(name, { calls: Number(calls), usec: Number(usec) });
  return stats;
}

/** Sends for `ms`, then waits until every consumer has every query sent so far (or gives up: lost). */
async function round(rig: Rig, ms: number, admin: Redis, totals: Totals): Promise<Sample> {
  await Promise.all(rig.consumers.map((consumer) => consumer.ask({ cmd: 'mark' }, 'marked', 30_000)));
  const statsBefore = process.env.BENCH_DEBUG ? await commandStats(admin) : undefined;
  const redisBefore = await redisCpuMs(admin);
  const began = performance.now();
  const ran = await rig.producer.ask<{ sent: number; cpuMs: number }>({ cmd: 'run', ms }, 'ran', 120_000);
  const finished = await Promise.all(rig.consumers.map((consumer) => consumer.ask<Finished>({ cmd: 'expect', total: ran.sent }, 'finished', 120_000)));
  // from the start of sending to the last query processed (the orchestrator's clock)
  const elapsedMs = performance.now() - began;
  const redis = (await redisCpuMs(admin)) - redisBefore;
  const sample: Sample = {
    sent: ran.sent - totals.sent,
    deliveries: finished.reduce((sum, f, index) => sum + f.received - totals.received[index], 0),
    elapsedMs,
    latencies: finished.flatMap((f) => f.latencies),
    cpuMs: { producer: ran.cpuMs, consumers: finished.reduce((sum, f) => sum + f.cpuMs, 0), redis },
  };
  if (statsBefore !== undefined) {
    sample.commands = new Map();
    for (const [name, after] of await commandStats(admin)) {
      const before = statsBefore.get(name) ?? { calls: 0, usec: 0 };
      if (after.calls > before.calls) sample.commands.set(name, { calls: after.calls - before.calls, usec: after.usec - before.usec });
    }
    sample.consumerStats = finished.map((f) => f.stats);
  }
  totals.sent = ran.sent;
  totals.received = finished.map((f) => f.received);
  return sample;
}

/** The rounds of one system as one result line. */
function saturatedResult(kind: Kind, system: System, runs: Sample[], warmUpMs: number): BenchResult {
  const sent = runs.reduce((sum, r) => sum + r.sent, 0);
  const deliveries = runs.reduce((sum, r) => sum + r.deliveries, 0);
  const consumers = consumersOf(kind);
  // CPU per delivery, in µs, by process: where the time goes on a machine whose cores all of them share
  const perDelivery = (side: keyof Sample['cpuMs']) => Math.round(((runs.reduce((sum, r) => sum + r.cpuMs[side], 0) * 1000) / Math.max(1, deliveries)) * 100) / 100;
  const debug: Record<string, unknown> = {};
  if (process.env.BENCH_DEBUG) {
    const commands = new Map<string, { calls: number; usec: number }>();
    for (const run of runs) {
      for (const [name, { calls, usec }] of run.commands ?? []) {
        const sum = commands.get(name) ?? { calls: 0, usec: 0 };
        commands.set(name, { calls: sum.calls + calls, usec: sum.usec + usec });
      }
    }
    debug.consumer_stats = runs[runs.length - 1]?.consumerStats;
    debug.commandstats = Object.fromEntries([...commands].map(([name, sum]) => [name, `${sum.calls} calls, ${sum.usec} us`]));
  }
  return result(kind, system, deliveries, runs.reduce((sum, r) => sum + r.elapsedMs, 0), runs.flatMap((r) => r.latencies), {
    queries: sent,
    consumers,
    lost: sent * consumers - deliveries,
    warm_up_ms: warmUpMs,
    rounds: runs.length,
    round_ops_per_s: runs.map((r) => Math.round((r.deliveries / r.elapsedMs) * 1000)),
    cpu_us_producer: perDelivery('producer'),
    cpu_us_consumers: perDelivery('consumers'),
    cpu_us_redis: perDelivery('redis'),
    ...debug,
  });
}

/** One paced phase: `perS` queries a second for PACED_MS, every query's latency timed (up to about PACED_SAMPLES). */
async function paced(kind: Kind, system: System, rig: Rig, phase: string, perS: number): Promise<BenchResult> {
  const sampleMask = 2 ** Math.ceil(Math.log2(Math.max(1, (perS * PACED_MS) / 1000 / PACED_SAMPLES))) - 1;
  for (const consumer of rig.consumers) consumer.send({ cmd: 'reset', sampleMask });
  await Promise.all(rig.consumers.map((consumer) => consumer.ask({ cmd: 'ping' }, 'pong', 30_000)));
  const { sent } = await rig.producer.ask<{ sent: number }>({ cmd: 'pace', perS, ms: PACED_MS }, 'paced', 120_000);
  const finished = await Promise.all(rig.consumers.map((consumer) => consumer.ask<Finished>({ cmd: 'expect', total: sent }, 'finished', 120_000)));
  const deliveries = finished.reduce((sum, f) => sum + f.received, 0);
  return result(`${kind}@${phase}`, system, deliveries, PACED_MS, finished.flatMap((f) => f.latencies), {
    offered_per_s: Math.round(perS),
    consumers: rig.consumers.length,
    sampled_every: sampleMask + 1,
    lost: sent * rig.consumers.length - deliveries,
  });
}

async function measure(context: BenchContext, kind: Kind, admin: Redis): Promise<BenchResult[]> {
  const warmUpMs = 1_000 * Math.max(context.scale, 0.25);
  const roundMs = Math.max(300, 1_000 * context.scale);
  const run = `${kind}-${Date.now()}`;
  const started: Peer[] = [];
  try {
    const rigs = {} as Record<System, Rig>;
    await Promise.all(SYSTEMS.map(async (system) => (rigs[system] = await startRig(context, kind, system, run, started))));
    const totals = Object.fromEntries(SYSTEMS.map((system) => [system, { sent: 0, received: rigs[system].consumers.map(() => 0) }])) as Record<System, Totals>;
    for (const system of SYSTEMS) await round(rigs[system], warmUpMs, admin, totals[system]);
    const samples = Object.fromEntries(SYSTEMS.map((system) => [system, [] as Sample[]])) as Record<System, Sample[]>;
    for (let r = 0; r < ROUNDS; r++) {
      for (const system of roundOrder(SYSTEMS, r)) samples[system].push(await round(rigs[system], roundMs, admin, totals[system]));
    }
    const saturated = SYSTEMS.map((system) => saturatedResult(kind, system, samples[system], warmUpMs));

    // paced phases: every query timed, at half the baseline's saturated rate (queries/s; a broadcast
    // delivery counts once per consumer), at half the system's own, and alone
    // (BENCH_SYSTEMS without the baseline paces at half the first system's rate)
    const halfOf = (line: BenchResult) => line.ops_per_s / (2 * consumersOf(kind));
    const halfLoad = halfOf(saturated.find((line) => line.system === 'baseline') ?? saturated[0]);
    const phases: BenchResult[] = [];
    for (const [index, system] of SYSTEMS.entries()) {
      phases.push(await paced(kind, system, rigs[system], 'half-load', halfLoad));
      if (system !== 'baseline' && system !== 'control') phases.push(await paced(kind, system, rigs[system], 'half-own', halfOf(saturated[index])));
      phases.push(await paced(kind, system, rigs[system], 'lone', 1000 / LONE_EVERY_MS));
    }
    return [...saturated, ...phases];
  } finally {
    await stopPeers(started);
  }
}

export const scenario: Scenario = {
  name: 'queues',
  async run(context) {
    const admin = new Redis(context.redisUrl);
    try {
      const results: BenchResult[] = [];
      for (const kind of ['fire-and-forget', 'broadcast'] as const) results.push(...(await measure(context, kind, admin)));
      // saturated lines first, then the paced phases of each kind
      return [...results.filter((r) => !r.scenario.includes('@')), ...results.filter((r) => r.scenario.includes('@'))];
    } finally {
      admin.disconnect();
    }
  },
};
