/**
 * The producing side of the `fire-and-forget` and `broadcast` benchmarks, in
 * a process of its own (one per system, so that no system's code shapes
 * another's JIT feedback). BENCH_KIND is `fire-and-forget` or `broadcast`.
 * BENCH_SYSTEM=intracom sends with RedisRPCClient.fireAndForget (or
 * broadcast) to service BENCH_SERVICE, action `work`; `baseline` (and
 * `control`, the same code again) is one XADD of a msgpackr `{ i, t }` per
 * query on BENCH_STREAM; `reference` batches the XADD: the queries of one
 * tick go as one entry holding a msgpack array, flushed from a microtask.
 *
 * Commands (IPC):
 * - `{ cmd: 'credit', received }`: the fewest queries any consumer has
 *   received so far (relayed from the consumers' progress); saturated runs
 *   keep at most WINDOW queries sent and not yet received by every consumer;
 * - `{ cmd: 'run', ms }`: sends in chunks of CHUNK for `ms`, each chunk's
 *   sends awaited, then answers `{ ev: 'ran', sent, elapsedMs, cpuMs }`
 *   (`sent` counts from the process start);
 * - `{ cmd: 'pace', perS, ms }`: sends `perS` queries a second, in 1 ms
 *   steps, for `ms` (no credit: the pace bounds what is in flight; what a
 *   stalled step left unsent goes at the end, so the phase offers all of
 *   `perS * ms`), then answers `{ ev: 'paced', sent, cpuMs }` (`sent`: in
 *   this phase);
 * - `{ cmd: 'exit' }`.
 */
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { machineNow } from './machineClock';

/** At most this many queries sent and not yet received by every consumer. */
const WINDOW = 5_000;
const CHUNK = 200;

const env = process.env;
const system = env.BENCH_SYSTEM as string;
const url = env.BENCH_REDIS_URL as string;
const stream = env.BENCH_STREAM as string;
const send = (message: unknown): void => void process.send?.(message);

type Produce = (i: number) => Promise<unknown>;

async function producer(): Promise<Produce> {
  if (system === 'intracom') {
    const service = env.BENCH_SERVICE as string;
    const rpc = new RedisRPCClient({ service: `${service}-producer`, redis: url, namespace: env.BENCH_NAMESPACE, queues: { consume: false } });
    await rpc.connect();
    if (env.BENCH_KIND === 'broadcast') return (i) => rpc.broadcast(service, 'work', { i, t: machineNow() });
    return (i) => rpc.fireAndForget(service, 'work', { i, t: machineNow() });
  }
  const packr = new Packr();
  const redis = new Redis(url);
  if (system !== 'reference') return (i) => redis.xadd(stream, '*', 'm', packr.pack({ i, t: machineNow() }));
  let pending: Array<{ i: number; t: number }> = [];
  let flushed: Promise<unknown> | undefined;
  return (i) => {
    pending.push({ i, t: machineNow() });
    flushed ??= new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => {
      const batch = pending;
      pending = [];
      flushed = undefined;
      return redis.xadd(stream, '*', 'm', packr.pack(batch));
    });
    return flushed;
  };
}

async function main(): Promise<void> {
  const produce = await producer();
  let sent = 0;
  let received = 0;
  const sleep = () => new Promise((resolve) => setTimeout(resolve, 1));
  const run = async (forMs: number): Promise<void> => {
    const deadline = performance.now() + forMs;
    while (performance.now() < deadline) {
      const chunk: Array<Promise<unknown>> = [];
      for (let k = 0; k < CHUNK; k++) chunk.push(produce(sent++));
      await Promise.all(chunk);
      while (sent - received > WINDOW) await sleep();
    }
  };
  const pace = async (perS: number, forMs: number): Promise<number> => {
    const sends: Array<Promise<unknown>> = [];
    const start = performance.now();
    let phaseSent = 0;
    const sendUntil = (elapsedMs: number) => {
      const due = Math.floor((Math.min(elapsedMs, forMs) * perS) / 1000);
      while (phaseSent < due) sends.push(produce(sent + phaseSent++));
    };
    while (performance.now() - start < forMs) {
      sendUntil(performance.now() - start);
      await sleep();
    }
    sendUntil(forMs);
    await Promise.all(sends);
    sent += phaseSent;
    return phaseSent;
  };
  const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; elapsedMs: number; cpuMs: number }> => {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const value = await work();
    const cpu = process.cpuUsage(cpuBefore);
    return { value, elapsedMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  process.on('message', (message: { cmd: string; received: number; ms: number; perS: number }) => {
    if (message.cmd === 'credit') received = message.received;
    if (message.cmd === 'run') void timed(() => run(message.ms)).then(({ elapsedMs, cpuMs }) => send({ ev: 'ran', sent, elapsedMs, cpuMs }));
    if (message.cmd === 'pace') void timed(() => pace(message.perS, message.ms)).then(({ value, cpuMs }) => send({ ev: 'paced', sent: value, cpuMs }));
    if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
