/**
 * Scenario `rpc`: calls/s, p50 and p99 of a round trip from caller processes
 * to a responder process, one call at a time (`rpc-serial`) and with 64 in
 * flight (`rpc-concurrent`), in several arrangements (the scenario of each
 * result line names its arrangement). Systems, in the same run, on the same
 * server:
 * - `baseline`: the minimal hand-written ioredis RPC of the issue (request
 *   PUBLISHed as msgpackr `{ id, replyTo, args }`, one PUBLISH per request
 *   and per reply, reply to the caller's own channel, pending calls in a
 *   Map, ioredis defaults);
 * - `control`: the baseline's code again, in processes of its own: its ratio
 *   to the baseline is what the arrangement reads by noise alone;
 * - `autopipelining`: the baseline on connections with ioredis
 *   `enableAutoPipelining` (the commands of one tick leave in one write);
 * - `reference`: the issue's hand-written design that coalesces the messages
 *   of one tick into one frame (test/bench/peers/coalesce.ts);
 * - `intracom`: RedisRPCClient, default options.
 *
 * Arrangements:
 * - payload: the issue's `{ id, name, ok }` with a `name` of 100 or 1,000
 *   characters (1,000 at 64 in flight only);
 * - warm-up: 1 s or 8 s (serial only) of untimed calls per system before the measured
 *   rounds (V8 optimises a longer path later: startup cost counts for real
 *   services, so 1 s is the one the targets hold for);
 * - processes: `siblings`, each system with its own caller and responder
 *   processes, every system's processes alive at once, rounds alternating
 *   between systems; `paired`, each system's caller and responder started
 *   fresh and alone on the machine while measured, systems one after another
 *   (the issue's independent harness), in three passes that each start fresh
 *   pairs and measure one round, the order turning every pass; `shared`, two caller processes with
 *   32 calls in flight each sharing one responder process per system, all
 *   alive at once, rounds alternating;
 * - topics: the caller's and the responder's processes holding only what
 *   RPC subscribes, or 10,000 idle topics besides (`topics10001`: subscribed
 *   on the client, or the connection, that receives the replies and the
 *   requests; nothing is published on them), so that the cost of a call is
 *   measured at both scales; `subscriptions` in the result lines is 1 + the
 *   idle topics.
 *
 * `cpu_us_*` is the CPU time per call of the callers, the responder and
 * Redis (user + system, so the kernel's share of every write is in it).
 * `calls_per_frame` (intracom systems only) is how many calls the callers'
 * frames carried, `sent` and `received`: how far batching coalesced.
 */
import Redis from 'ioredis';
import { spawnPeer, type Peer } from '../../support/processes';
import { redisCpuMs, result, roundOrder, selectedSystems, stopPeers, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'baseline' | 'control' | 'autopipelining' | 'reference' | 'intracom' | 'intracom-signed' | 'intracom-sealed';
const SYSTEMS = selectedSystems<System>(['baseline', 'control', 'autopipelining', 'reference', 'intracom', 'intracom-signed', 'intracom-sealed']);
const ROUNDS = 3;

interface Arrangement {
  mode: 'serial' | 'concurrent';
  payloadBytes: number;
  warmUpMs: number;
  processes: 'siblings' | 'paired' | 'shared';
  /** Idle topics the caller and the responder each hold besides RPC's own subscriptions. */
  extraTopics?: number;
}

/** Every arrangement; `quick` ones also run under BENCH_QUICK=1. */
const ARRANGEMENTS: ReadonlyArray<Arrangement & { quick?: true }> = [
  { mode: 'concurrent', payloadBytes: 100, warmUpMs: 1_000, processes: 'siblings', quick: true },
  { mode: 'concurrent', payloadBytes: 1_000, warmUpMs: 1_000, processes: 'siblings' },
  { mode: 'concurrent', payloadBytes: 100, warmUpMs: 1_000, processes: 'paired', quick: true },
  { mode: 'concurrent', payloadBytes: 100, warmUpMs: 1_000, processes: 'paired', extraTopics: 10_000 },
  { mode: 'concurrent', payloadBytes: 100, warmUpMs: 1_000, processes: 'shared' },
  { mode: 'serial', payloadBytes: 100, warmUpMs: 1_000, processes: 'siblings', quick: true },
  { mode: 'serial', payloadBytes: 100, warmUpMs: 8_000, processes: 'siblings' },
  { mode: 'serial', payloadBytes: 100, warmUpMs: 1_000, processes: 'paired' },
];

/** The scenario name of an arrangement, as its result lines carry it (`topics<n>` only with idle topics: the others keep the names of earlier runs). */
function label(a: Arrangement): string {
  const topics = a.extraTopics ? ` topics${a.extraTopics + 1}` : '';
  return `rpc-${a.mode} ${a.payloadBytes >= 1000 ? `${a.payloadBytes / 1000}KB` : `${a.payloadBytes}B`} warm${a.warmUpMs / 1000}s ${a.processes}${topics}`;
}

/** One system's processes. */
interface Rig {
  callers: Peer[];
  responder: Peer;
}

interface Sample {
  calls: number;
  elapsedMs: number;
  latencies: Float64Array[];
  cpuMs: { callers: number; responder: number; redis: number };
  /** Frames the callers sent and received (intracom only; 0 for the hand-written systems). */
  frames: { sent: number; received: number };
}

async function startRig(context: BenchContext, system: System, arrangement: Arrangement, started: Peer[]): Promise<Rig> {
  const env = { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace, BENCH_SYSTEM: system, BENCH_PAYLOAD_BYTES: String(arrangement.payloadBytes), BENCH_EXTRA_TOPICS: String(arrangement.extraTopics ?? 0) };
  const spawn = (file: string) => {
    const peer = spawnPeer(file, env);
    started.push(peer);
    return peer;
  };
  const ready = (peer: Peer) => peer.next((m: { ev: string }) => m.ev === 'ready', 60_000);
  const responder = spawn('test/bench/peers/rpc-responder.ts');
  await ready(responder);
  const callers = Array.from({ length: arrangement.processes === 'shared' ? 2 : 1 }, () => spawn('test/bench/peers/rpc-caller.ts'));
  await Promise.all(callers.map(ready));
  return { callers, responder };
}

const inFlightOf = (arrangement: Arrangement, rig: Rig) => (arrangement.mode === 'serial' ? 1 : 64 / rig.callers.length);

async function warm(rig: Rig, arrangement: Arrangement, ms: number): Promise<void> {
  await Promise.all(rig.callers.map((caller) => caller.ask({ cmd: 'warm', inFlight: inFlightOf(arrangement, rig), ms }, 'warm', 120_000)));
}

async function round(rig: Rig, arrangement: Arrangement, ms: number, admin: Redis): Promise<Sample> {
  const responderCpu = async () => (await rig.responder.ask<{ ms: number }>({ cmd: 'cpu' }, 'cpu', 60_000)).ms;
  const before = { responder: await responderCpu(), redis: await redisCpuMs(admin) };
  const ran = await Promise.all(
    rig.callers.map((caller) =>
      caller.ask<{ elapsedMs: number; calls: number; latencies: Float64Array; cpuMs: number; frames: { sent: number; received: number } }>({ cmd: 'run', calls: 100_000, inFlight: inFlightOf(arrangement, rig), ms }, 'ran', 120_000),
    ),
  );
  return {
    calls: ran.reduce((sum, r) => sum + r.calls, 0),
    elapsedMs: Math.max(...ran.map((r) => r.elapsedMs)),
    latencies: ran.map((r) => r.latencies),
    frames: { sent: ran.reduce((sum, r) => sum + r.frames.sent, 0), received: ran.reduce((sum, r) => sum + r.frames.received, 0) },
    cpuMs: { callers: ran.reduce((sum, r) => sum + r.cpuMs, 0), responder: (await responderCpu()) - before.responder, redis: (await redisCpuMs(admin)) - before.redis },
  };
}

async function measure(context: BenchContext, arrangement: Arrangement, admin: Redis): Promise<BenchResult[]> {
  const warmUpMs = arrangement.warmUpMs * Math.max(context.scale, 0.25);
  const roundMs = Math.max(300, 1_000 * context.scale);
  const samples = Object.fromEntries(SYSTEMS.map((system) => [system, [] as Sample[]])) as Record<System, Sample[]>;
  if (arrangement.processes === 'paired') {
    // a fresh pair per system and pass, alone on the machine; the passes turn the systems' order, so
    // that a drift of the machine during one system's pair does not decide its figure
    for (let pass = 0; pass < ROUNDS; pass++) {
      for (const system of roundOrder(SYSTEMS, pass)) {
        const started: Peer[] = [];
        try {
          const rig = await startRig(context, system, arrangement, started);
          await warm(rig, arrangement, warmUpMs);
          samples[system].push(await round(rig, arrangement, roundMs, admin));
        } finally {
          await stopPeers(started);
        }
      }
    }
  } else {
    const started: Peer[] = [];
    try {
      const rigs = {} as Record<System, Rig>;
      for (const system of SYSTEMS) rigs[system] = await startRig(context, system, arrangement, started);
      for (const system of SYSTEMS) await warm(rigs[system], arrangement, warmUpMs);
      // alternate the systems in rounds so that drift of the machine hits all alike
      for (let r = 0; r < ROUNDS; r++) for (const system of SYSTEMS) samples[system].push(await round(rigs[system], arrangement, roundMs, admin));
    } finally {
      await stopPeers(started);
    }
  }
  return SYSTEMS.map((system) => {
    const runs = samples[system];
    const total = runs.reduce((sum, r) => sum + r.calls, 0);
    const perCall = (side: keyof Sample['cpuMs']) => Math.round((runs.reduce((sum, r) => sum + r.cpuMs[side], 0) * 1000 * 10) / Math.max(1, total)) / 10;
    return result(
      label(arrangement),
      system,
      total,
      runs.reduce((sum, r) => sum + r.elapsedMs, 0),
      runs.flatMap((r) => r.latencies.flatMap((l) => Array.from(l))),
      {
        in_flight: arrangement.mode === 'serial' ? 1 : 64,
        payload_bytes: arrangement.payloadBytes,
        warm_up_ms: arrangement.warmUpMs,
        processes: arrangement.processes,
        subscriptions: (arrangement.extraTopics ?? 0) + 1,
        cpu_us_callers: perCall('callers'),
        cpu_us_responder: perCall('responder'),
        cpu_us_redis: perCall('redis'),
        ...(system.startsWith('intracom') ? { calls_per_frame: { sent: perFrame(runs, total, 'sent'), received: perFrame(runs, total, 'received') } } : {}),
      },
    );
  });
}

/** Calls per frame the callers sent or received over some rounds. */
function perFrame(runs: Sample[], calls: number, way: keyof Sample['frames']): number {
  return Math.round((calls * 10) / Math.max(1, runs.reduce((sum, r) => sum + r.frames[way], 0))) / 10;
}

/** `npm run bench rpc`: every arrangement (BENCH_QUICK=1: the quick ones); BENCH_RPC=serial or concurrent runs one mode only; BENCH_ARRANGEMENT=text runs the arrangements whose label contains it (`1KB`, `paired`). */
export const scenario: Scenario = {
  name: 'rpc',
  async run(context) {
    const admin = new Redis(context.redisUrl);
    try {
      const results: BenchResult[] = [];
      for (const arrangement of ARRANGEMENTS) {
        if (process.env.BENCH_RPC !== undefined && process.env.BENCH_RPC !== arrangement.mode) continue;
        if (context.scale < 1 && !arrangement.quick) continue;
        if (process.env.BENCH_ARRANGEMENT !== undefined && !label(arrangement).includes(process.env.BENCH_ARRANGEMENT)) continue;
        results.push(...(await measure(context, arrangement, admin)));
      }
      return results;
    } finally {
      admin.disconnect();
    }
  },
};
