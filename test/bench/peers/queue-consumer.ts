/**
 * The consuming side of the `fire-and-forget` and `broadcast` benchmarks, in
 * a process of its own. BENCH_SYSTEM=intracom: a RedisRPCClient instance of
 * BENCH_SERVICE handling action `work`. Every other system (`baseline`,
 * `control`, `reference`): the minimal hand-written Redis Streams loop
 * (XREADGROUP COUNT 100 BLOCK, msgpackr, one XACK per batch) on BENCH_STREAM
 * with group BENCH_GROUP; an entry holding a msgpack array (the
 * batched-XADD producer's) counts as that many queries.
 *
 * Sends `{ ev: 'progress', received }` every 1,024 queries (the producer's
 * credit, relayed by the bench). Commands (IPC):
 * - `{ cmd: 'mark' }` (answers `marked`): a round starts here, the CPU and
 *   the latency samples of the next `finished` count from now;
 * - `{ cmd: 'expect', total }`: answers `{ ev: 'finished', received,
 *   latencies, cpuMs }` once `total` queries arrived since the start or the
 *   last `reset` (or after GIVE_UP_MS without reaching it: the difference is
 *   lost), with the samples and the CPU since the last `mark`, `reset` or
 *   `finished`;
 * - `{ cmd: 'reset', sampleMask }`: counts from 0 again and times the
 *   queries whose count has no bit of `sampleMask` set (0: every query)
 *   rather than one in 16 (the paced phases); `{ cmd: 'ping' }` answers
 *   `pong`.
 */
import Redis from 'ioredis';
import { Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { machineNow } from './machineClock';

const env = process.env;
const send = (message: unknown): void => void process.send?.(message);
/** How long an `expect` waits for queries that do not come. */
const GIVE_UP_MS = 30_000;
let received = 0;
let expected = Infinity;
let latencies: number[] = [];
let sampleMask = 15;
let giveUp: NodeJS.Timeout | undefined;

function onQuery(query: { i: number; t: number }): void {
  received += 1;
  if ((received & sampleMask) === 0) latencies.push(machineNow() - query.t);
  if ((received & 1023) === 0) send({ ev: 'progress', received });
  if (received >= expected) finish();
}

// counted from 'ready', so that loading the code is not charged to the work
let cpuAtStart = process.cpuUsage();

/** Starts a new count of CPU and latency samples. */
function mark(): void {
  latencies = [];
  cpuAtStart = process.cpuUsage();
}

function finish(): void {
  clearTimeout(giveUp);
  expected = Infinity;
  const cpu = process.cpuUsage(cpuAtStart);
  send({ ev: 'finished', received, latencies, cpuMs: (cpu.user + cpu.system) / 1000, stats: rpcClient?.queryStats() });
  mark();
}

async function runBaseline(): Promise<void> {
  const redis = new Redis(env.BENCH_REDIS_URL as string);
  const stream = env.BENCH_STREAM as string;
  const group = env.BENCH_GROUP as string;
  await redis.xgroup('CREATE', stream, group, '$', 'MKSTREAM').catch(() => undefined);
  const unpackr = new Unpackr();
  cpuAtStart = process.cpuUsage();
  send({ ev: 'ready' });
  for (;;) {
    const reply = (await redis.callBuffer('XREADGROUP', 'GROUP', group, 'c', 'COUNT', 100, 'BLOCK', 1000, 'STREAMS', stream, '>')) as unknown[] | null;
    if (reply === null || reply.length === 0) continue;
    const entries = (Buffer.isBuffer(reply[0]) ? reply[1] : (reply[0] as unknown[])[1]) as Array<[Buffer, Buffer[]]>;
    const ids: Buffer[] = [];
    for (const [id, fields] of entries) {
      const value = unpackr.unpack(fields[1]) as { i: number; t: number } | Array<{ i: number; t: number }>;
      if (Array.isArray(value)) for (const query of value) onQuery(query);
      else onQuery(value);
      ids.push(id);
    }
    await redis.xack(stream, group, ...ids);
  }
}

let rpcClient: RedisRPCClient | undefined;

async function runIntracom(): Promise<void> {
  const rpc = new RedisRPCClient({
    service: env.BENCH_SERVICE as string,
    instanceId: env.BENCH_INSTANCE,
    redis: env.BENCH_REDIS_URL,
    namespace: env.BENCH_NAMESPACE,
    queues: { blockMs: 1000 },
  });
  rpcClient = rpc;
  rpc.handle('work', (query: { i: number; t: number }) => onQuery(query));
  await rpc.connect();
  cpuAtStart = process.cpuUsage();
  send({ ev: 'ready' });
}

process.on('message', (message: { cmd: string; total: number; sampleMask: number }) => {
  if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  if (message.cmd === 'ping') return send({ ev: 'pong' });
  if (message.cmd === 'mark') {
    mark();
    return send({ ev: 'marked' });
  }
  if (message.cmd === 'reset') {
    received = 0;
    expected = Infinity;
    sampleMask = message.sampleMask;
    return mark();
  }
  if (message.cmd !== 'expect') return;
  expected = message.total;
  if (received >= expected) return finish();
  giveUp = setTimeout(finish, GIVE_UP_MS);
});

(env.BENCH_SYSTEM === 'intracom' ? runIntracom() : runBaseline()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
