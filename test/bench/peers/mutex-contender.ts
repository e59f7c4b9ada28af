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
import { acquireScript, releaseScript } from '../../../src/mutex/scripts';

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

/** One critical section: resolves with the function that leaves it. */
type Enter = () => Promise<() => Promise<void>>;

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

/** intracom's own scripts driven by the least JavaScript: what the library's client-side work costs. */
async function bareScripts(redis: Redis, sub: Redis, namespace: string): Promise<Enter> {
  const tag = '{mutex:bare-scripts}';
  const prefix = namespace ? `${namespace}:` : '';
  const keys = [`${prefix}ic:${tag}:lock`, `${prefix}ic:${tag}:fence`, `${prefix}ic:${tag}:queue`, `${prefix}ic:${tag}:waiters`];
  const waiterId = randomUUID().slice(0, 12);
  const channel = `${prefix}intracom.mutex.wake.${tag}.${waiterId}`;
  await sub.ssubscribe(channel);
  await redis.script('LOAD', acquireScript.source);
  await redis.script('LOAD', releaseScript.source);
  let counter = 0;
  let waiting: { token: string; resolve: (value: string | null) => void } | null = null;
  sub.on('smessage', (_channel: string, message: string) => {
    const value = message.slice(message.indexOf('|') + 1);
    if (waiting && value.startsWith(waiting.token + '|')) waiting.resolve(value);
  });
  return async () => {
    const token = waiterId + (++counter).toString(36);
    let value: string | null = null;
    while (value === null) {
      const noticed = new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), 50 + Math.random() * 50);
        waiting = { token, resolve: (v) => { clearTimeout(timer); resolve(v); } };
      });
      const takenAt = Date.now();
      const reply = (await redis.evalsha(acquireScript.sha, 4, ...keys, token, takenAt, LEASE_MS, 'node', 'bare-scripts', channel, 1200)) as [number, number | string];
      if (reply[0] === 1) value = `${token}|${reply[1]}|${takenAt}|${LEASE_MS}|node`;
      else if (reply[0] === 2) value = reply[1] as string;
      else value = await noticed;
      waiting?.resolve(null);
      waiting = null;
    }
    const held = value;
    return async () => {
      if ((await redis.evalsha(releaseScript.sha, 4, ...keys, held, 'bare-scripts', channel)) === 0) throw new Error('bare-scripts release failed');
    };
  };
}

/** `text` with `from` replaced; throws when `from` is not in it (intracom's scripts changed: this variant must follow). */
function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`bare-blocking: intracom's mutex scripts no longer contain ${JSON.stringify(from.slice(0, 60))}`);
  return text.replace(from, to);
}

/**
 * The hand-over of `bare-blocking`: the live first waiter is handed the lock
 * by an LPUSH to its own list (named after its wake channel in the waiters
 * hash), not by SPUBLISH; its liveness is still its wake channel's subscriber.
 */
const BLPOP_HAND_OVER = [
  ["redis.call('SPUBLISH', channel, mutexId .. '|' .. value)", "local list = string.sub(channel, string.find(channel, '|', 1, true) + 1); redis.call('LPUSH', list, value); redis.call('PEXPIRE', list, 60000)"],
  ['local channel = string.sub(info, bar + 1)', "local channel = string.sub(info, bar + 1); local live = string.sub(channel, 1, string.find(channel, '|', 1, true) - 1)"],
  ["redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2] > 0", "redis.call('PUBSUB', 'SHARDNUMSUB', live)[2] > 0"],
].reduce((text, [from, to]) => edit(text, from, to), acquireScript.source.slice(acquireScript.source.indexOf('local function handOver'), acquireScript.source.indexOf('local token, timeout')));
/** The attempt of `bare-blocking`: the outcome, taken or handed, is also pushed to the waiter's list ARGV[8]. */
const BLPOP_ACQUIRE = `-- KEYS as acquire; ARGV as acquire, ARGV[6] '<channel>|<list>', ARGV[8] the waiter's list
${BLPOP_HAND_OVER}
` + [
  ["if string.sub(value, 1, #token + 1) == token .. '|' then return {2, value} end", "if string.sub(value, 1, #token + 1) == token .. '|' then redis.call('LPUSH', ARGV[8], value) return {2, value} end"],
  ['if handed == entry then return {2, mine} end', "if handed == entry then redis.call('LPUSH', ARGV[8], mine) return {2, mine} end"],
  [
    "redis.call('SET', KEYS[1], token .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. timeout .. '|' .. nodeId, 'PX', timeout)\nreturn {1, fence}",
    "local mine = token .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. timeout .. '|' .. nodeId\nredis.call('SET', KEYS[1], mine, 'PX', timeout)\nredis.call('LPUSH', ARGV[8], mine)\nreturn {1, fence}",
  ],
].reduce((text, [from, to]) => edit(text, from, to), acquireScript.source.slice(acquireScript.source.indexOf('local token, timeout')));
const BLPOP_RELEASE = `-- KEYS as release; ARGV[1] value, ARGV[2] mutexId
${BLPOP_HAND_OVER}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local handed = handOver(ARGV[2], false, '')
if not handed then redis.call('DEL', KEYS[1]) end
return 1`;

/** One command in RESP, written past ioredis so that it expects no reply. */
function resp(args: (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) { const text = String(arg); out += `$${Buffer.byteLength(text)}\r\n${text}\r\n`; }
  return out;
}

/**
 * Each attempt is one write: CLIENT REPLY SKIP, the attempt (no reply), and
 * BLPOP on the waiter's list, which answers when the attempt took the lock,
 * when a release hands it over, or after the retry pause.
 */
async function bareBlocking(redis: Redis, blocker: Redis, sub: Redis, namespace: string): Promise<Enter> {
  const tag = '{mutex:bare-blocking}';
  const prefix = namespace ? `${namespace}:` : '';
  const keys = [`${prefix}ic:${tag}:lock`, `${prefix}ic:${tag}:fence`, `${prefix}ic:${tag}:queue`, `${prefix}ic:${tag}:waiters`];
  const waiterId = randomUUID().slice(0, 12);
  const channel = `${prefix}intracom.mutex.wake.${tag}.${waiterId}`;
  const list = `${prefix}ic:${tag}:wake:${waiterId}`;
  await sub.ssubscribe(channel);
  const acquireSha = (await redis.script('LOAD', BLPOP_ACQUIRE)) as string;
  const releaseSha = (await redis.script('LOAD', BLPOP_RELEASE)) as string;
  await blocker.ping();
  let counter = 0;
  return async () => {
    const token = waiterId + (++counter).toString(36);
    let value: string | null = null;
    while (value === null) {
      const takenAt = Date.now();
      (blocker as unknown as { stream: { write(text: string): void } }).stream.write('*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n' + resp(['EVALSHA', acquireSha, 4, ...keys, token, takenAt, LEASE_MS, 'node', 'bare-blocking', channel + '|' + list, 1200, list]));
      const popped = await blocker.blpop(list, 0.05 + Math.random() * 0.05);
      if (popped !== null && popped[1].startsWith(token + '|')) value = popped[1];
    }
    const held = value;
    return async () => {
      if ((await redis.evalsha(releaseSha, 4, ...keys, held, 'bare-blocking')) === 0) throw new Error('bare-blocking release failed');
    };
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
