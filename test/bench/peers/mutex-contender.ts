/**
 * One process of the `mutex-contended` benchmark: it contends for one mutex
 * with the other processes, in a loop of acquire, empty critical section,
 * release, with each system in turn (one process holds all of them, so that
 * N processes serve every system alike).
 * - `intracom`: `RedisMutex.acquire` then `lock.release()`, default options.
 * - `baseline` (and `control`, the same code on another key): the raw loop,
 *   `SET key <uuid> PX NX`, retried every 1 ms until it succeeds, then EVALSHA
 *   of a GET-compare-DEL script.
 * - `redis-semaphore`: its `Mutex` with default options (retry every 10 ms).
 * - `fair-floor`: the least a fair hand-over can cost on Redis, for scale
 *   and not a usable lock: one token in a list, taken with `BLPOP` (Redis
 *   serves blocked clients in the order they blocked) and given back with
 *   `LPUSH`. Two wake-ups per section (the `BLPOP` reply that hands the
 *   mutex over, the `LPUSH` reply), and no expiry, fencing, record or crash
 *   safety: a holder that dies keeps the token for ever.
 * - `bare-scripts` and `bare-blocking`: intracom's protocol, and a blocking
 *   variant of it, with the least JavaScript (see the scenario).
 *
 * Commands (IPC): `{ cmd: 'run', system, startAt, endAt }` (times on the
 * machine's monotonic clock, `machineNow()`) loops from
 * `startAt` to `endAt` and answers `{ ev: 'ran', acquired, released, waits,
 * failures, cpuMs, userMs, wakeups }`: per critical section, when it was entered and left,
 * and how long its acquire waited; the CPU time (user + system) the
 * process used meanwhile, and how often it slept and was woken (voluntary
 * context switches).
 */
import { createHash, randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Mutex } from 'redis-semaphore';
import { RedisMutex } from '../../../src/mutex/RedisMutex';
import { machineNow } from './machineClock';
import { bareBlocking, bareScripts, type Enter } from './bareMutex';

type System = 'intracom' | 'baseline' | 'control' | 'redis-semaphore' | 'fair-floor' | 'bare-scripts' | 'bare-blocking';

const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const send = (message: unknown): void => void process.send?.(message);
const now = machineNow;

const RELEASE = `-- KEYS[1] lock key; ARGV[1] token
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const RELEASE_SHA = createHash('sha1').update(RELEASE).digest('hex');
const LEASE_MS = 10_000;


function rawLoop(redis: Redis, key: string): Enter {
  return async () => {
    const token = randomUUID();
    while ((await redis.set(key, token, 'PX', LEASE_MS, 'NX')) !== 'OK') await new Promise((resolve) => setTimeout(resolve, 1));
    return async () => {
      if ((await redis.evalsha(RELEASE_SHA, 1, key, token)) !== 1) throw new Error('raw release failed');
    };
  };
}

/** How long one `BLPOP` of the fair floor blocks, in s, so that a loop sees its end time. */
const FLOOR_POLL_S = 0.05;

function fairFloor(redis: Redis, key: string, endAt: () => number): Enter {
  return async () => {
    // a null reply is the poll's timeout: give up at the round's end, as the other loops stop there
    while ((await redis.blpop(key, FLOOR_POLL_S)) === null) if (now() >= endAt()) throw new Error('round over');
    return async () => void (await redis.lpush(key, 't'));
  };
}

async function main(): Promise<void> {
  const redis = new Redis(url);
  await redis.script('LOAD', RELEASE);
  const mutex = new RedisMutex({ redis: url, namespace });
  const semaphore = new Mutex(new Redis(url), `${namespace}:bench:contended-semaphore`);
  /** The fair floor's one token; the scenario puts it there before the first round. */
  const floorKey = `${namespace}:bench:contended-floor`;
  let roundEnd = 0;
  const systems: Record<System, Enter> = {
    intracom: async () => {
      const lock = await mutex.acquire('bench-contended');
      return async () => {
        if (!(await lock.release())) throw new Error('intracom release failed');
      };
    },
    baseline: rawLoop(redis, `${namespace}:bench:contended-raw`),
    control: rawLoop(redis, `${namespace}:bench:contended-control`),
    'redis-semaphore': async () => {
      await semaphore.acquire();
      return () => semaphore.release();
    },
    'fair-floor': fairFloor(redis, floorKey, () => roundEnd),
    'bare-scripts': await bareScripts(redis, new Redis(url), namespace),
    'bare-blocking': await bareBlocking(redis, new Redis(url), new Redis(url), namespace),
  };

  async function run(system: System, startAt: number, endAt: number) {
    const enter = systems[system];
    roundEnd = endAt;
    const acquired: number[] = [];
    const released: number[] = [];
    const waits: number[] = [];
    let failures = 0;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - now())));
    const cpu = process.cpuUsage();
    const slept = process.resourceUsage().voluntaryContextSwitches;
    while (now() < endAt) {
      const asked = now();
      let leave: () => Promise<void>;
      try {
        leave = await enter();
      } catch {
        if (now() >= endAt) break; // the fair floor's wait ended with the round
        failures++; // an acquire that gave up (redis-semaphore's acquireTimeout)
        continue;
      }
      const entered = now();
      const leaving = now();
      await leave();
      acquired.push(entered);
      released.push(leaving);
      waits.push(entered - asked);
    }
    const used = process.cpuUsage(cpu);
    return { acquired: Float64Array.from(acquired), released: Float64Array.from(released), waits: Float64Array.from(waits), failures, cpuMs: (used.user + used.system) / 1000, userMs: used.user / 1000, wakeups: process.resourceUsage().voluntaryContextSwitches - slept };
  }

  process.on('message', (message: { cmd: string; system: System; startAt: number; endAt: number }) => {
    if (message.cmd === 'run') void run(message.system, message.startAt, message.endAt).then((ran) => send({ ev: 'ran', ...ran }));
    if (message.cmd === 'now') send({ ev: 'now', at: now() });
    if (message.cmd === 'exit') process.exit(0);
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
