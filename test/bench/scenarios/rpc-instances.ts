/**
 * Scenario `rpc-instances`: one caller process, 64 calls in flight, to one
 * service of N = 1, 10 and 50 instances hosted in two responder processes
 * whatever N (at N = 1 the second process hosts nothing and idles), so that
 * only the number of instances changes. Systems, in the same run, each
 * measured alone (see GROUPS):
 * - `baseline`: the naive hand-written RPC with one request channel per
 *   instance, the caller going round-robin over them, one PUBLISH per
 *   request and per reply;
 * - `intracom-per-call`: RedisRPCClient with `spread: 'call'`;
 * - `intracom`: RedisRPCClient with its default `spread: 'burst'`.
 *
 * The counts are swept up and back down (SWEEP), each figure over both visits.
 * Reported per N and system: calls/s, p50, p99, CPU per call of the caller,
 * the responders and Redis, `x_intracom_n1` (calls/s against intracom's own
 * N = 1 figure of the run) and `spread_max_dev`: over every 1 s window of the
 * measured rounds (the counts read every 100 ms, a window starting at any
 * reading), the largest distance of one instance's count from the mean
 * count per instance, as a fraction of that mean;
 * `idle_cpu_ms_per_s`: the CPU the responder processes use per second with
 * no call made (what N idle instances cost).
 *
 * Then `rpc-instances-slow-*-n10`: the same with N = 10 where one instance,
 * alone in a third responder process, is slow (`cpu1ms`: its handler spins
 * the CPU 1 ms per call; `wait5ms`: it awaits 5 ms per call), for `burst`
 * and `call` spreading: calls/s, p50, p99 and `slow_share`, the share of
 * the calls the slow instance answered (`even_share` is 1/N).
 */
import Redis from 'ioredis';
import { spawnPeer, type Peer } from '../../support/processes';
import { redisCpuMs, result, round, selectedSystems, stopPeers, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'baseline' | 'intracom-per-call' | 'intracom';
const SYSTEMS: readonly System[] = ['baseline', 'intracom-per-call', 'intracom'];
/** The instance counts measured: BENCH_INSTANCES (comma-separated, such as `1,2` to see what a second busy process costs), else 1, 10 and 50. */
const INSTANCES = process.env.BENCH_INSTANCES?.split(',').filter(Boolean).map(Number) ?? [1, 10, 50];
const IN_FLIGHT = 64;
const RESPONDER_PROCESSES = 2;
const ROUNDS = 3;
const ROUND_MS = 1_500;
/** Long enough for the responders' start-up (JIT of 25 clients each) to settle too. */
const WARM_UP_MS = 3_000;
/**
 * Each system alone, one after the other: at N = 50, one system's idle
 * instances (an intracom instance keeps a heartbeat and its durable
 * consumers' blocking reads) loaded the 2-core machine enough to cut the
 * other's calls/s by several times when both were alive at once.
 */
const GROUPS: ReadonlyArray<readonly System[]> = selectedSystems(SYSTEMS).map((system) => [system]);
/**
 * The order the instance counts are measured in: up and back down (1, 10,
 * 50, 50, 10, 1), each visit with responders of its own. Each count's
 * figure sums both its visits, so that a drift of the machine over the
 * sweep falls on every count alike: measured once each, one after another,
 * a slow spell of a shared host fell on one count and read as a cost of
 * scale.
 */
const SWEEP: readonly number[] = [...INSTANCES, ...[...INSTANCES].reverse()];

interface Sample {
  calls: number;
  elapsedMs: number;
  latencies: Float64Array;
  cpuMs: { caller: number; responders: number; redis: number };
  /** Frames (PUBLISHes) sent by the caller and by the responders (intracom only). */
  frames: { caller: number; responders: number };
  /** Largest relative distance from the mean per instance, over the round's windows. */
  maxDeviation: number;
  /** CPU the responder processes used per second while no call was made (ms/s), measured before the rounds. */
  idleCpuMsPerS: number;
  /** Calls each instance answered during the round. */
  perInstance: number[];
}

/**
 * The instances' request channels (hand-written systems) split over the
 * responder processes; with a slow instance, it has a process of its own
 * (first), so that its handler holds up no other instance.
 */
function layout(context: BenchContext, system: System, n: number, slow?: string): string[][] {
  const channels = Array.from({ length: n }, (_, i) => `${context.namespace}:bench.${system}.n${n}${slow === undefined ? '' : `.slow-${slow}`}.${i}`);
  const perProcess: string[][] = Array.from({ length: RESPONDER_PROCESSES }, () => []);
  const spread = slow === undefined ? channels : channels.slice(1);
  spread.forEach((channel, i) => perProcess[i % RESPONDER_PROCESSES].push(channel));
  return slow === undefined ? perProcess : [channels.slice(0, 1), ...perProcess];
}

/**
 * One slow instance among N = 10, under `burst` and `call` spreading: its
 * handler spins the CPU 1 ms per call, or awaits 5 ms per call.
 */
const SLOW = { instances: 10, kinds: ['cpu:1', 'wait:5'], systems: ['intracom', 'intracom-per-call'] as const };

async function counts(responders: Peer[]): Promise<number[]> {
  const replies = await Promise.all(responders.map((peer) => peer.ask<{ counts: number[] }>({ cmd: 'counts' }, 'counts')));
  return replies.flatMap((reply) => reply.counts);
}

function deviation(before: number[], after: number[]): number {
  const deltas = after.map((count, i) => count - before[i]);
  const mean = deltas.reduce((sum, d) => sum + d, 0) / deltas.length;
  if (mean === 0) return 0;
  return Math.max(...deltas.map((d) => Math.abs(d - mean) / mean));
}

/** How often the per-instance counts are read during a round, for the spread over every 1 s window (ms). */
const SPREAD_SAMPLE_MS = 100;
const SPREAD_WINDOW_MS = 1_000;

/**
 * The largest deviation over every window of at least SPREAD_WINDOW_MS
 * between two readings (sliding by one reading, so that a window may start
 * at any reading, not only at whole seconds of the round).
 */
function worstWindow(readings: Array<{ at: number; counts: number[] }>): number {
  let worst = 0;
  let end = 0;
  for (let start = 0; start < readings.length; start++) {
    while (end < readings.length && readings[end].at - readings[start].at < SPREAD_WINDOW_MS) end++;
    if (end === readings.length) break;
    worst = Math.max(worst, deviation(readings[start].counts, readings[end].counts));
  }
  return worst;
}

/** Runs one measured round, reading the per-instance counts every SPREAD_SAMPLE_MS for the spread. */
async function measuredRound(caller: Peer, responders: Peer[], admin: Redis, roundMs: number): Promise<Sample> {
  const usage = async () => {
    const replies = await Promise.all(responders.map((peer) => peer.ask<{ ms: number; frames?: { sent: number } }>({ cmd: 'cpu' }, 'cpu')));
    return { ms: replies.reduce((sum, r) => sum + r.ms, 0), frames: replies.reduce((sum, r) => sum + (r.frames?.sent ?? 0), 0) };
  };
  const before = { responders: await usage(), redis: await redisCpuMs(admin) };
  const first = await counts(responders);
  const readings = [{ at: performance.now(), counts: first }];
  const running = caller.ask<{ elapsedMs: number; calls: number; latencies: Float64Array; cpuMs: number; frames: { sent: number } }>({ cmd: 'run', calls: 200_000, inFlight: IN_FLIGHT, ms: roundMs }, 'ran', 120_000);
  let done = false;
  const finished = running.finally(() => (done = true));
  while (!done) {
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, SPREAD_SAMPLE_MS))]);
    if (done) break;
    readings.push({ at: performance.now(), counts: await counts(responders) });
  }
  const ran = await running;
  const last = await counts(responders);
  const perInstance = last.map((count, i) => count - first[i]);
  // a round shorter than a window (BENCH_QUICK) is one window
  const maxDeviation = readings[readings.length - 1].at - readings[0].at < SPREAD_WINDOW_MS ? deviation(first, last) : worstWindow(readings);
  const after = await usage();
  const cpuMs = { caller: ran.cpuMs, responders: after.ms - before.responders.ms, redis: (await redisCpuMs(admin)) - before.redis };
  const frames = { caller: ran.frames.sent, responders: after.frames - before.responders.frames };
  return { calls: ran.calls, elapsedMs: ran.elapsedMs, latencies: ran.latencies, cpuMs, frames, maxDeviation, idleCpuMsPerS: 0, perInstance };
}

/**
 * Measures a group of systems at N instances: their responders start, every
 * system warms up, then their measured rounds alternate; the responders end
 * before the next group starts, so that one group's idle instances (each
 * RedisRPCClient keeps a heartbeat and its durable consumers) do not load the
 * machine while another is measured.
 */
async function measureGroup(context: BenchContext, n: number, group: readonly System[], callers: Record<System, Peer>, admin: Redis, samples: Record<System, Sample[]>, slow?: string): Promise<void> {
  const started: Peer[] = [];
  try {
    const responders = {} as Record<System, Peer[]>;
    for (const system of group) {
      const service = `bench-${system}-n${n}${slow === undefined ? '' : `-slow-${slow.replace(':', '')}`}`;
      responders[system] = layout(context, system, n, slow).map((channels, p) => {
        const peer = spawnPeer('test/bench/peers/rpc-responder.ts', {
          BENCH_REDIS_URL: context.redisUrl,
          BENCH_NAMESPACE: context.namespace,
          BENCH_SYSTEM: system === 'baseline' ? 'baseline' : 'intracom',
          BENCH_SERVICE: service,
          BENCH_CHANNELS: channels.join(','),
          ...(slow !== undefined && p === 0 ? { BENCH_SLOW: slow } : {}),
        });
        started.push(peer);
        return peer;
      });
      await Promise.all(responders[system].map((peer) => peer.next((m: { ev: string }) => m.ev === 'ready', 120_000)));
      await callers[system].ask({ cmd: 'target', service, channels: layout(context, system, n, slow).flat() }, 'target');
    }
    // every instance announced itself before its process said ready, so the callers' first read of the registry finds all
    for (const system of group) await callers[system].ask({ cmd: 'warm', inFlight: IN_FLIGHT, ms: WARM_UP_MS * Math.max(context.scale, 0.5) }, 'warm', 120_000);
    const idle: Partial<Record<System, number>> = {};
    for (const system of group) {
      const cpu = async () => (await Promise.all(responders[system].map((peer) => peer.ask<{ ms: number }>({ cmd: 'cpu' }, 'cpu')))).reduce((sum, r) => sum + r.ms, 0);
      const before = await cpu();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      idle[system] = (await cpu()) - before;
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const system of group) samples[system].push({ ...(await measuredRound(callers[system], responders[system], admin, Math.max(500, ROUND_MS * context.scale))), idleCpuMsPerS: idle[system] ?? 0 });
    }
  } finally {
    await stopPeers(started);
  }
}

export const scenario: Scenario = {
  name: 'rpc-instances',
  async run(context) {
    const admin = new Redis(context.redisUrl);
    const callers = {} as Record<System, Peer>;
    try {
      for (const system of selectedSystems(SYSTEMS)) {
        callers[system] = spawnPeer('test/bench/peers/rpc-caller.ts', { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace, BENCH_SYSTEM: system });
        await callers[system].next((m: { ev: string }) => m.ev === 'ready');
      }
      const results: BenchResult[] = [];
      let intracomN1 = 0;
      const byInstances = new Map<number, Record<System, Sample[]>>(INSTANCES.map((n) => [n, { baseline: [], 'intracom-per-call': [], intracom: [] }]));
      for (const n of SWEEP) for (const group of GROUPS) await measureGroup(context, n, group, callers, admin, byInstances.get(n) as Record<System, Sample[]>);
      for (const n of INSTANCES) {
        const samples = byInstances.get(n) as Record<System, Sample[]>;
        for (const system of selectedSystems(SYSTEMS)) {
          const runs = samples[system];
          const total = runs.reduce((sum, r) => sum + r.calls, 0);
          const elapsedMs = runs.reduce((sum, r) => sum + r.elapsedMs, 0);
          const perCall = (side: keyof Sample['cpuMs']) => Math.round((runs.reduce((sum, r) => sum + r.cpuMs[side], 0) * 1000 * 10) / total) / 10;
          const line = result(`rpc-instances-n${n}`, system, total, elapsedMs, runs.flatMap((r) => Array.from(r.latencies)), {
            instances: n,
            visits: SWEEP.filter((m) => m === n).length,
            responder_processes: RESPONDER_PROCESSES,
            in_flight: IN_FLIGHT,
            spread_max_dev: round(Math.max(...runs.map((r) => r.maxDeviation))),
            idle_cpu_ms_per_s: Math.round(runs[0]?.idleCpuMsPerS ?? 0),
            cpu_us_caller: perCall('caller'),
            cpu_us_responders: perCall('responders'),
            cpu_us_redis: perCall('redis'),
            // intracom's frames per call (a PUBLISH each): requests from the caller, replies from the responders
            frames_per_call_caller: round(runs.reduce((sum, r) => sum + r.frames.caller, 0) / total),
            frames_per_call_responders: round(runs.reduce((sum, r) => sum + r.frames.responders, 0) / total),
          });
          if (system === 'intracom' && n === 1) intracomN1 = line.ops_per_s;
          if (system === 'intracom') line.x_intracom_n1 = intracomN1 > 0 ? round(line.ops_per_s / intracomN1) : null;
          results.push(line);
        }
      }
      for (const slow of SLOW.kinds) {
        const samples: Record<System, Sample[]> = { baseline: [], 'intracom-per-call': [], intracom: [] };
        const systems = SLOW.systems.filter((system) => selectedSystems(SYSTEMS).includes(system));
        if (systems.length === 0) continue;
        await measureGroup(context, SLOW.instances, systems, callers, admin, samples, slow);
        for (const system of systems) {
          const runs = samples[system];
          const total = runs.reduce((sum, r) => sum + r.calls, 0);
          const elapsedMs = runs.reduce((sum, r) => sum + r.elapsedMs, 0);
          const answered = runs.reduce((sum, r) => sum + r.perInstance.reduce((a, b) => a + b, 0), 0);
          results.push(
            result(`rpc-instances-slow-${slow.replace(':', '')}ms-n${SLOW.instances}`, system, total, elapsedMs, runs.flatMap((r) => Array.from(r.latencies)), {
              instances: SLOW.instances,
              slow,
              // the slow instance is the first of the first process
              slow_share: answered > 0 ? round(runs.reduce((sum, r) => sum + (r.perInstance[0] ?? 0), 0) / answered) : null,
              even_share: round(1 / SLOW.instances),
              spread_max_dev: round(Math.max(...runs.map((r) => r.maxDeviation))),
            }),
          );
        }
      }
      return results;
    } finally {
      admin.disconnect();
      await stopPeers(Object.values(callers));
    }
  },
};
