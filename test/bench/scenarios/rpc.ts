/**
 * Scenarios `rpc-serial` (one call at a time) and `rpc-concurrent` (64 calls
 * in flight): calls/s, p50 and p99 of a round trip from a caller process to a
 * responder process, intracom's RedisRPCClient against the minimal
 * hand-written ioredis RPC of the issue (request PUBLISHed as msgpackr
 * `{ id, replyTo, args }`, one PUBLISH per request and per reply, reply to
 * the caller's own channel, pending calls in a Map, ioredis defaults), in the
 * same run, on the same server. Targets: serial p50 <= 1.1x the baseline's;
 * 64 in flight >= 3x the baseline's calls/s.
 *
 * A third system, `reference`, is the issue's hand-written design that
 * coalesces the messages of one tick into one frame (no slicing, no checks),
 * measured for context: the issue reports it reaching 3x-4.4x the baseline.
 *
 * Each system has its own caller and responder processes: measured on the
 * same V8, the two systems slowed each other (each ran 10-30 % slower when
 * its rounds alternated with the other's in one process, as they share
 * ioredis and msgpackr and so their type feedback). This process only
 * orchestrates, alternating the systems' rounds. `cpu_us_*` is the CPU time
 * per call of the caller, the responder and Redis (user + system, so the
 * kernel's share of every write is in it).
 */
import Redis from 'ioredis';
import { spawnPeer, type Peer } from '../../support/processes';
import { redisCpuMs, result, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'intracom' | 'baseline' | 'reference';
const SYSTEMS: readonly System[] = ['baseline', 'reference', 'intracom'];

/**
 * Untimed runs of the same work before the measured rounds, the same time for
 * every system: V8 optimises a hot path only after many calls, and
 * intracom's longer path takes longer to get there than the baseline's. At
 * 64 in flight it takes about 150,000 calls (a second or two). One call at a
 * time it takes several seconds: after 1.5 s and after 4 s of serial calls,
 * V8 was still optimising intracom's `callService`, the frame decoder and
 * ioredis's `sendCommand` for the first time, and serial p50 read 1.17x and
 * 1.10x the baseline's, against 1.00x after 8 s (CPU profiles of the caller:
 * 278, 64 and 30 samples in the optimising compiler; the baseline 25).
 */
const WARM_UP_MS = { 'rpc-serial': 8_000, 'rpc-concurrent': 2_000 };

/** A caller process and a responder process per system; the callers start once the responders listen. */
async function withPeers<T>(context: BenchContext, body: (callers: Record<System, Peer>, responders: Record<System, Peer>) => Promise<T>): Promise<T> {
  const env = { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace };
  const ready = (peer: Peer) => peer.next((m: { ev: string }) => m.ev === 'ready');
  const started: Peer[] = [];
  const start = (file: string, system: System) => {
    const peer = spawnPeer(file, { ...env, BENCH_SYSTEM: system });
    started.push(peer);
    return peer;
  };
  try {
    const each = (file: string) => Object.fromEntries(SYSTEMS.map((system) => [system, start(file, system)])) as Record<System, Peer>;
    const responders = each('test/bench/peers/rpc-responder.ts');
    await Promise.all(SYSTEMS.map((system) => ready(responders[system])));
    const callers = each('test/bench/peers/rpc-caller.ts');
    await Promise.all(SYSTEMS.map((system) => ready(callers[system])));
    return await body(callers, responders);
  } finally {
    await Promise.all(started.map((peer) => peer.kill()));
  }
}


interface Sample {
  calls: number;
  elapsedMs: number;
  latencies: Float64Array;
  cpuMs: { caller: number; responder: number; redis: number };
}

async function measure(context: BenchContext, name: 'rpc-serial' | 'rpc-concurrent'): Promise<BenchResult[]> {
  const inFlight = name === 'rpc-serial' ? 1 : 64;
  const calls = Math.max(500, Math.round((name === 'rpc-serial' ? 10_000 : 150_000) * context.scale));
  const admin = new Redis(context.redisUrl);
  try {
    return await withPeers(context, async (callers, responders) => {
      const responderCpuMs = async (system: System) => (await responders[system].ask<{ ms: number }>({ cmd: 'cpu' }, 'cpu', 120_000)).ms;
      const samples: Record<System, Sample[]> = { baseline: [], reference: [], intracom: [] };
      for (const system of SYSTEMS) await callers[system].ask({ cmd: 'warm', inFlight, ms: WARM_UP_MS[name] * context.scale }, 'warm', 120_000);
      // alternate the systems in rounds so that drift of the machine hits both alike
      for (let round = 0; round < 3; round++) {
        for (const system of SYSTEMS) {
          const roundCalls = Math.round(calls / 3);
          const before = { responder: await responderCpuMs(system), redis: await redisCpuMs(admin) };
          const ran = await callers[system].ask<{ elapsedMs: number; latencies: Float64Array; cpuMs: number }>({ cmd: 'run', calls: roundCalls, inFlight }, 'ran', 120_000);
          const cpuMs = { caller: ran.cpuMs, responder: (await responderCpuMs(system)) - before.responder, redis: (await redisCpuMs(admin)) - before.redis };
          samples[system].push({ calls: roundCalls, elapsedMs: ran.elapsedMs, latencies: ran.latencies, cpuMs });
        }
      }
      return SYSTEMS.map((system) => {
        const runs = samples[system];
        const total = runs.reduce((sum, r) => sum + r.calls, 0);
        const elapsedMs = runs.reduce((sum, r) => sum + r.elapsedMs, 0);
        const perCall = (side: keyof Sample['cpuMs']) => Math.round((runs.reduce((sum, r) => sum + r.cpuMs[side], 0) * 1000 * 10) / total) / 10;
        return result(name, system, total, elapsedMs, runs.flatMap((r) => Array.from(r.latencies)), {
          in_flight: inFlight,
          cpu_us_caller: perCall('caller'),
          cpu_us_responder: perCall('responder'),
          cpu_us_redis: perCall('redis'),
        });
      });
    });
  } finally {
    admin.disconnect();
  }
}

/** `npm run bench rpc`: both scenarios; their result lines are named `rpc-serial` and `rpc-concurrent`. */
export const scenario: Scenario = {
  name: 'rpc',
  async run(context) {
    return [...(await measure(context, 'rpc-serial')), ...(await measure(context, 'rpc-concurrent'))];
  },
};
