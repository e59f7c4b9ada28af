/**
 * Scenario `mutex`: uncontended P+V cycles, one after the other, on one
 * mutex id. intracom: `RedisMutex.P` then `V` (SET NX PX, then the Lua
 * compare-and-delete). Baseline: the minimal hand-written equivalent in plain
 * ioredis: `SET key <uuid> PX NX`, then EVALSHA of a GET-compare-DEL script.
 * The two systems run in alternating short rounds (30 x 100 ms each, the
 * order swapped every round), so that drift of the machine (CPU frequency,
 * other load) falls on both alike. `ratio_median` is the median over rounds
 * of intracom/baseline ops, less sensitive to such drift than the totals.
 */
import { randomUUID, createHash } from 'node:crypto';
import Redis from 'ioredis';
import { RedisMutex } from '../../../src/mutex/RedisMutex';
import { msSince, result, type BenchContext, type BenchResult, type Scenario } from '../harness';

const RELEASE = `-- KEYS[1] lock key; ARGV[1] token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const RELEASE_SHA = createHash('sha1').update(RELEASE).digest('hex');
const LEASE_MS = 10_000;

type Cycle = () => Promise<void>;

async function measure(cycle: Cycle, durationMs: number, latencies: number[]): Promise<{ operations: number; elapsedMs: number }> {
  const started = process.hrtime.bigint();
  let operations = 0;
  for (;;) {
    const t0 = process.hrtime.bigint();
    await cycle();
    latencies.push(msSince(t0));
    operations++;
    if (operations % 16 === 0 && msSince(started) >= durationMs) break;
  }
  return { operations, elapsedMs: msSince(started) };
}

async function run(context: BenchContext): Promise<BenchResult[]> {
  const raw = new Redis(context.redisUrl);
  const mutex = new RedisMutex({ redis: context.redisUrl, namespace: context.namespace });
  const mutexId = 'bench-mutex';
  const baselineKey = `${context.namespace}:bench:baseline-lock`;
  await raw.script('LOAD', RELEASE);

  const intracom: Cycle = async () => {
    if (!(await mutex.P(mutexId, 'bench', LEASE_MS))) throw new Error('uncontended P failed');
    if (!(await mutex.V(mutexId))) throw new Error('V failed');
  };
  const baseline: Cycle = async () => {
    const token = randomUUID();
    if ((await raw.set(baselineKey, token, 'PX', LEASE_MS, 'NX')) !== 'OK') throw new Error('uncontended SET NX failed');
    if ((await raw.evalsha(RELEASE_SHA, 1, baselineKey, token)) !== 1) throw new Error('release failed');
  };

  // Warm-up (JIT, script cache, connection), then alternating rounds.
  await measure(intracom, 200, []);
  await measure(baseline, 200, []);
  const rounds = Math.max(4, Math.round(30 * context.scale));
  const roundMs = 100;
  const totals = { intracom: { operations: 0, elapsedMs: 0, latencies: [] as number[] }, baseline: { operations: 0, elapsedMs: 0, latencies: [] as number[] } };
  const roundRatios: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: Array<['intracom' | 'baseline', Cycle]> = round % 2 === 0 ? [['baseline', baseline], ['intracom', intracom]] : [['intracom', intracom], ['baseline', baseline]];
    const rate = { intracom: 0, baseline: 0 };
    for (const [system, cycle] of order) {
      const total = totals[system];
      const { operations, elapsedMs } = await measure(cycle, roundMs, total.latencies);
      total.operations += operations;
      total.elapsedMs += elapsedMs;
      rate[system] = operations / elapsedMs;
    }
    roundRatios.push(rate.intracom / rate.baseline);
  }
  roundRatios.sort((a, b) => a - b);
  const ratioMedian = Math.round(roundRatios[Math.floor(roundRatios.length / 2)] * 100) / 100;
  await mutex.close();
  raw.disconnect();
  return (['intracom', 'baseline'] as const).map((system) =>
    result('mutex', system, totals[system].operations, totals[system].elapsedMs, totals[system].latencies, system === 'intracom' ? { unit: 'P+V cycle', rounds, ratio_median: ratioMedian } : { unit: 'P+V cycle', rounds }),
  );
}

/** The `mutex` benchmark scenario. */
export const scenario: Scenario = { name: 'mutex', run };
