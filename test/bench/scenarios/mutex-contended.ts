/**
 * Scenario `mutex-contended`: N processes (4, then 16) contend for one mutex,
 * each in a loop of acquire, empty critical section, release. Systems:
 * - `intracom`: `RedisMutex.acquire` and `release`, default options (a release
 *   hands the mutex at once to the first waiter, in arrival order);
 * - `baseline`: the raw loop, `SET NX PX` retried every 1 ms, then a Lua
 *   compare-and-delete;
 * - `control`: the baseline's code again, on a key of its own: its ratio to
 *   the baseline is the noise of the run;
 * - `reference`: redis-semaphore's `Mutex` with its default options;
 * - `fair-floor`: the least a fair hand-over costs on Redis (one token passed
 *   by `LPUSH` to the client that has waited longest in `BLPOP`; no expiry,
 *   fencing or crash safety): what any fair design can reach here;
 * - `bare-scripts`: intracom's own Lua scripts and wake notices driven by the
 *   least JavaScript (no options, deadlines, signals or records): what the
 *   library's client-side work costs on top of its protocol;
 * - `bare-blocking`: a design evaluated for the hand-over, bare like
 *   `bare-scripts`: the same scripts, but the release pushes the lock to a
 *   list of the waiter's, which waits in `BLPOP` on a connection of its own
 *   and sends its attempt after `CLIENT REPLY SKIP`, so that an attempt that
 *   queues is not answered (two wake-ups per section, as the fair floor).
 * Every process serves every system (test/bench/peers/mutex-contender.ts);
 * each system first runs 1 s untimed, then the systems run in alternating
 * rounds (the order turns every round), all N processes at once from a
 * common start time to a common end.
 *
 * Per system: critical sections per second; `p50_ms`/`p99_ms` are the
 * hand-over (from the moment one holder starts its release to the moment the
 * next holder is in, on the shared clock of the machine); `wait_*` is how
 * long an acquire waited (`wait_max_ms`: no starvation); `other_process` the
 * share of sections whose previous holder was another process (1 means every
 * release handed over; the raw loop's releaser mostly takes the mutex again
 * itself); `ratio_median` the median over rounds of the ratio to the
 * baseline; `wakeups_per_section` how often the clients slept and were woken
 * (voluntary context switches of all N processes) per section;
 * `cpu_us_clients_user` the part of the clients' CPU spent in user space.
 */
import Redis from 'ioredis';
import { spawnPeer, type Peer } from '../../support/processes';
import { percentile, redisCpuMs, round, roundOrder, type BenchContext, type BenchResult, type Scenario } from '../harness';
import { machineNow } from '../peers/machineClock';

type System = 'baseline' | 'intracom' | 'control' | 'redis-semaphore' | 'fair-floor' | 'bare-scripts' | 'bare-blocking';
/** The systems, in their first round's order; BENCH_SYSTEMS=intracom,... runs only those (for profiling). */
const SYSTEMS: readonly System[] = (['baseline', 'intracom', 'control', 'redis-semaphore', 'fair-floor', 'bare-scripts', 'bare-blocking'] as const).filter((system) => !process.env.BENCH_SYSTEMS || process.env.BENCH_SYSTEMS.split(',').includes(system));
/** What the systems that are not plain loops are, for the result lines. */
const PEERS: Partial<Record<System, string>> = {
  'redis-semaphore': 'redis-semaphore Mutex, default options',
  'fair-floor': 'one token, BLPOP to take it, LPUSH to give it back (no expiry, fencing or crash safety)',
  'bare-scripts': "intracom's scripts and wake notices, bare JavaScript",
  'bare-blocking': "intracom's scripts, hand-over pushed to the waiter's list (BLPOP), attempts after CLIENT REPLY SKIP",
};
/** Process counts, in order (BENCH_MUTEX_PROCESSES=4,16 by default). */
const PROCESS_COUNTS = (process.env.BENCH_MUTEX_PROCESSES?.split(',').map(Number) ?? [4, 16]) as readonly number[];

interface Ran {
  acquired: Float64Array;
  released: Float64Array;
  waits: Float64Array;
  failures: number;
  cpuMs: number;
  userMs: number;
  wakeups: number;
}

interface Section {
  process: number;
  acquired: number;
  released: number;
}

const now = machineNow;

async function measure(context: BenchContext, processes: number): Promise<BenchResult[]> {
  const env = { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace };
  const peers: Peer[] = Array.from({ length: processes }, () => spawnPeer('test/bench/peers/mutex-contender.ts', env));
  const admin = new Redis(context.redisUrl);
  try {
    await Promise.all(peers.map((peer) => peer.next((m: { ev: string }) => m.ev === 'ready', 120_000)));
    const runAll = async (system: System, ms: number): Promise<Ran[]> => {
      const startAt = now() + 100;
      return Promise.all(peers.map((peer) => peer.ask<Ran>({ cmd: 'run', system, startAt, endAt: startAt + ms }, 'ran', 120_000)));
    };
    // the fair floor's one token (its loops give it back, so it stays one)
    await admin.del(`${context.namespace}:bench:contended-floor`);
    await admin.rpush(`${context.namespace}:bench:contended-floor`, 't');
    for (const system of SYSTEMS) await runAll(system, 1000 * Math.max(0.5, context.scale));
    const rounds = context.scale < 1 ? 2 : 4;
    const roundMs = Math.round(1000 * Math.max(0.5, context.scale));
    const perSystem = <T>(make: () => T) => Object.fromEntries(SYSTEMS.map((system) => [system, make()])) as Record<System, T>;
    const sections = perSystem<Section[][]>(() => []);
    const waits = perSystem<number[]>(() => []);
    const failures = perSystem(() => 0);
    const roundRatios = perSystem<number[]>(() => []);
    const cpuMs = perSystem(() => ({ clients: 0, redis: 0, user: 0 }));
    const wakeups = perSystem(() => 0);
    for (let index = 0; index < rounds; index++) {
      const order = roundOrder(SYSTEMS, index);
      const counts = {} as Record<System, number>;
      for (const system of order) {
        const redisBefore = await redisCpuMs(admin);
        const ran = await runAll(system, roundMs);
        cpuMs[system].redis += (await redisCpuMs(admin)) - redisBefore;
        const roundSections: Section[] = [];
        ran.forEach((r, process) => {
          for (let i = 0; i < r.acquired.length; i++) roundSections.push({ process, acquired: r.acquired[i], released: r.released[i] });
          for (const wait of r.waits) waits[system].push(wait);
          failures[system] += r.failures;
          cpuMs[system].clients += r.cpuMs;
          cpuMs[system].user += r.userMs;
          wakeups[system] += r.wakeups;
        });
        roundSections.sort((a, b) => a.acquired - b.acquired);
        sections[system].push(roundSections);
        counts[system] = roundSections.length;
      }
      if (counts.baseline) for (const system of SYSTEMS) roundRatios[system].push(counts[system] / counts.baseline);
    }
    const median = (values: number[]) => round([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]);
    return SYSTEMS.map((system) => {
      const handovers: number[] = [];
      let other = 0;
      let total = 0;
      for (const list of sections[system]) {
        total += list.length;
        for (let i = 1; i < list.length; i++) {
          handovers.push(list[i].acquired - list[i - 1].released);
          if (list[i].process !== list[i - 1].process) other++;
        }
      }
      handovers.sort((a, b) => a - b);
      const sortedWaits = [...waits[system]].sort((a, b) => a - b);
      const extra: Record<string, unknown> = {
        unit: 'critical section (acquire, nothing, release)',
        processes,
        rounds,
        round_ms: roundMs,
        wait_p50_ms: percentile(sortedWaits, 50),
        wait_p99_ms: percentile(sortedWaits, 99),
        wait_max_ms: sortedWaits.length ? round(sortedWaits[sortedWaits.length - 1]) : null,
        other_process: total > 1 ? round(other / (total - sections[system].length)) : null,
        failures: failures[system],
        cpu_us_clients: total ? round((cpuMs[system].clients * 1000) / total) : null,
        cpu_us_clients_user: total ? round((cpuMs[system].user * 1000) / total) : null,
        cpu_us_redis: total ? round((cpuMs[system].redis * 1000) / total) : null,
        wakeups_per_section: total ? round(wakeups[system] / total) : null,
      };
      if (system !== 'baseline' && roundRatios[system].length) extra.ratio_median = median(roundRatios[system]);
      if (PEERS[system] !== undefined) extra.peer = PEERS[system];
      return {
        scenario: `mutex-contended-${processes}`,
        system: system === 'redis-semaphore' ? 'reference' : system,
        ops_per_s: Math.round((total / (rounds * roundMs)) * 1000),
        p50_ms: percentile(handovers, 50),
        p99_ms: percentile(handovers, 99),
        ...extra,
      } satisfies BenchResult;
    });
  } finally {
    admin.disconnect();
    // a clean exit first, so that CPU profiles (INTRACOM_PEER_PROFILE) get written
    for (const peer of peers) peer.send({ cmd: 'exit' });
    await Promise.all(peers.map((peer) => Promise.race([peer.exited(), new Promise((resolve) => setTimeout(resolve, 3000))])));
    await Promise.all(peers.map((peer) => peer.kill()));
  }
}

/** The `mutex-contended` benchmark scenario: lines `mutex-contended-4` and `mutex-contended-16`. */
export const scenario: Scenario = {
  name: 'mutex-contended',
  async run(context) {
    const results: BenchResult[] = [];
    for (const processes of PROCESS_COUNTS) results.push(...(await measure(context, processes)));
    return results;
  },
};
