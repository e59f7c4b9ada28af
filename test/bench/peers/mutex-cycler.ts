/**
 * One system's side of the `mutex` benchmark, in a process of its own (so
 * that neither system's code shapes the other's JIT feedback): uncontended
 * P+V cycles on one mutex id, one after the other.
 * BENCH_SYSTEM=intracom: `RedisMutex.P` then `V` (SET NX PX, then the Lua
 * compare-and-delete). BENCH_SYSTEM=baseline: the minimal hand-written
 * equivalent in plain ioredis, `SET key <uuid> PX NX`, then EVALSHA of a
 * GET-compare-DEL script.
 *
 * Commands (IPC): `{ cmd: 'run', ms }` cycles for about `ms` and answers
 * `{ ev: 'ran', operations, elapsedMs, latencies }`; `{ cmd: 'exit' }`.
 */
import { createHash, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { RedisMutex } from '../../../src/mutex/RedisMutex';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const send = (message: unknown): void => void process.send?.(message);

const RELEASE = `-- KEYS[1] lock key; ARGV[1] token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const RELEASE_SHA = createHash('sha1').update(RELEASE).digest('hex');
const LEASE_MS = 10_000;

type Cycle = () => Promise<void>;

async function intracomCycle(): Promise<Cycle> {
  const mutex = new RedisMutex({ redis: url, namespace });
  return async () => {
    if (!(await mutex.P('bench-mutex', 'bench', LEASE_MS))) throw new Error('uncontended P failed');
    if (!(await mutex.V('bench-mutex'))) throw new Error('V failed');
  };
}

async function baselineCycle(): Promise<Cycle> {
  const redis = new Redis(url);
  const key = `${namespace}:bench:baseline-lock`;
  await redis.script('LOAD', RELEASE);
  return async () => {
    const token = randomUUID();
    if ((await redis.set(key, token, 'PX', LEASE_MS, 'NX')) !== 'OK') throw new Error('uncontended SET NX failed');
    if ((await redis.evalsha(RELEASE_SHA, 1, key, token)) !== 1) throw new Error('release failed');
  };
}

async function run(cycle: Cycle, durationMs: number): Promise<{ operations: number; elapsedMs: number; latencies: Float64Array }> {
  const latencies: number[] = [];
  const started = performance.now();
  let operations = 0;
  for (;;) {
    const t0 = performance.now();
    await cycle();
    latencies.push(performance.now() - t0);
    operations++;
    if (operations % 16 === 0 && performance.now() - started >= durationMs) break;
  }
  return { operations, elapsedMs: performance.now() - started, latencies: Float64Array.from(latencies) };
}

async function main(): Promise<void> {
  const cycle = system === 'intracom' ? await intracomCycle() : await baselineCycle();
  process.on('message', (message: { cmd: string; ms: number }) => {
    if (message.cmd === 'run') void run(cycle, message.ms).then((ran) => send({ ev: 'ran', ...ran }));
    if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
