/**
 * Scenario `mutex`: uncontended P+V cycles, one after the other, on one
 * mutex id. intracom: `RedisMutex.P` then `V` (SET NX PX, then the Lua
 * compare-and-delete). Baseline: the minimal hand-written equivalent in plain
 * ioredis: `SET key <uuid> PX NX`, then EVALSHA of a GET-compare-DEL script.
 * Each system cycles in processes of its own (test/bench/peers/mutex-cycler.ts):
 * sharing one V8, the two slowed each other, as for RPC. Each system has
 * three such processes, used in turn: on this 2-core machine one process can
 * run 20 % faster than an identical one for its whole life (where the
 * scheduler places it beside Redis), which with one process per system
 * decided the ratio. Every process first cycles untimed for 3 s, so that V8
 * has optimised each system's path before it is timed (serial RPC calls
 * needed several seconds for that: see rpc.ts; 3 s and 6 s gave the mutex the
 * same ratio).
 * The systems then run in alternating short rounds (30 x 100 ms each, the
 * order changed every round), so that drift of the machine (CPU frequency,
 * other load) falls on all alike. `ratio_median` is the median over rounds
 * of a system's ops over the baseline's, less sensitive to such drift than
 * the totals.
 *
 * A third system, `control`, runs the baseline's code again in three
 * processes of its own. Its ratio to the baseline is what this scenario reads
 * when the two sides do exactly the same: the noise of the run, against which
 * to read intracom's ratio.
 */
import { spawnPeer, type Peer } from '../../support/processes';
import { result, roundOrder, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'intracom' | 'baseline' | 'control';
const SYSTEMS: readonly System[] = ['baseline', 'intracom', 'control'];


/** Cycler processes per system, used in turn (see above). */
const PROCESSES_PER_SYSTEM = 3;
/** Untimed cycling of every process before the rounds, in ms (see above). */
const WARM_UP_MS = 3_000;

async function run(context: BenchContext): Promise<BenchResult[]> {
  const env = { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace };
  // started (and warmed up) in turns, so that no system's processes all come first
  const peers: Record<System, Peer[]> = { intracom: [], baseline: [], control: [] };
  const all: Peer[] = [];
  for (let index = 0; index < PROCESSES_PER_SYSTEM; index++) {
    for (const system of SYSTEMS) {
      const peer = spawnPeer('test/bench/peers/mutex-cycler.ts', { ...env, BENCH_SYSTEM: system === 'control' ? 'baseline' : system });
      peers[system].push(peer);
      all.push(peer);
    }
  }
  try {
    await Promise.all(all.map((peer) => peer.next((m: { ev: string }) => m.ev === 'ready', 120_000)));
    type Ran = { operations: number; elapsedMs: number; latencies: Float64Array };
    // warm-up (JIT, script cache, connection), the same time for every process, one at a time
    for (const peer of all) await peer.ask<Ran>({ cmd: 'run', ms: WARM_UP_MS * context.scale }, 'ran', 60_000);
    const rounds = Math.max(6, Math.round(30 * context.scale));
    const roundMs = 100;
    const totals = Object.fromEntries(SYSTEMS.map((system) => [system, { operations: 0, elapsedMs: 0, latencies: [] as number[] }])) as Record<System, { operations: number; elapsedMs: number; latencies: number[] }>;
    const roundRatios: Record<System, number[]> = { intracom: [], baseline: [], control: [] };
    for (let round = 0; round < rounds; round++) {
      // every system goes first, second and third in turn, forwards and backwards
      const order = roundOrder(SYSTEMS, round);
      if (Math.floor(round / SYSTEMS.length) % 2 === 1) order.reverse();
      const rate = { intracom: 0, baseline: 0, control: 0 };
      for (const system of order) {
        const ran = await peers[system][round % PROCESSES_PER_SYSTEM].ask<Ran>({ cmd: 'run', ms: roundMs }, 'ran', 60_000);
        const total = totals[system];
        total.operations += ran.operations;
        total.elapsedMs += ran.elapsedMs;
        for (const latency of ran.latencies) total.latencies.push(latency);
        rate[system] = ran.operations / ran.elapsedMs;
      }
      for (const system of SYSTEMS) roundRatios[system].push(rate[system] / rate.baseline);
    }
    const median = (values: number[]) => Math.round([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] * 100) / 100;
    const extra = { unit: 'P+V cycle', rounds, processes: PROCESSES_PER_SYSTEM };
    return SYSTEMS.map((system) =>
      result('mutex', system, totals[system].operations, totals[system].elapsedMs, totals[system].latencies, system === 'baseline' ? extra : { ...extra, ratio_median: median(roundRatios[system]) }),
    );
  } finally {
    await Promise.all(all.map((peer) => peer.kill()));
  }
}

/** The `mutex` benchmark scenario. */
export const scenario: Scenario = { name: 'mutex', run };
