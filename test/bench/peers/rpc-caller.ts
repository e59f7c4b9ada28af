/**
 * The calling side of the `rpc-*` benchmarks, in a process of its own (one
 * per system, so that neither system's code shapes the other's JIT
 * feedback). BENCH_SYSTEM=intracom calls `echo` with RedisRPCClient;
 * BENCH_SYSTEM=baseline is the minimal hand-written ioredis caller of the
 * issue: requests PUBLISHed as msgpackr `{ id, replyTo, args }`, one PUBLISH
 * per request, replies on the caller's own channel, pending calls in a Map,
 * ioredis defaults. BENCH_SYSTEM=reference is the hand-written
 * design that coalesces the requests (and the responder the replies) of one
 * tick into one frame (test/bench/peers/coalesce.ts).
 *
 * Commands (IPC): `{ cmd: 'warm', inFlight, ms }` runs untimed for `ms`;
 * `{ cmd: 'run', calls, inFlight }` answers `{ ev: 'ran', elapsedMs,
 * latencies, cpuMs }`; `{ cmd: 'exit' }`.
 */
import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { coalescingPublisher } from './coalesce';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const send = (message: unknown): void => void process.send?.(message);
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };

type Call = (value: unknown) => Promise<unknown>;

async function intracomCaller(): Promise<Call> {
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: url, namespace });
  await rpc.connect();
  return (value) => rpc.callService('bench-rpc', 'echo', value);
}

type Reply = { id: number; result: unknown };

/** The hand-written callers' bookkeeping: numbered calls in a Map, settled by their replies. */
function numberedCalls(send: (id: number, value: unknown) => void): { call: Call; settle: (reply: Reply) => void } {
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  return {
    call: (value) => {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        send(id, value);
      });
    },
    settle: (reply) => {
      const resolve = pending.get(reply.id);
      if (resolve === undefined) return;
      pending.delete(reply.id);
      resolve(reply.result);
    },
  };
}

async function baselineCaller(): Promise<Call> {
  const packr = new Packr();
  const unpackr = new Unpackr();
  const publisher = new Redis(url);
  const subscriber = new Redis(url);
  const replyTo = `${namespace}:bench.baseline.reply.${process.pid}`;
  const requests = `${namespace}:bench.baseline.rpc`;
  const calls = numberedCalls((id, value) => void publisher.publish(requests, packr.pack({ id, replyTo, args: [value] })));
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => calls.settle(unpackr.unpack(message) as Reply));
  await subscriber.subscribe(replyTo);
  return calls.call;
}

async function referenceCaller(): Promise<Call> {
  const packr = new Packr({ useRecords: true });
  const unpackr = new Unpackr({ useRecords: true });
  const subscriber = new Redis(url);
  const send = coalescingPublisher(new Redis(url), packr);
  const replyTo = `${namespace}:bench.reference.reply.${process.pid}`;
  const requests = `${namespace}:bench.reference.rpc`;
  const calls = numberedCalls((id, value) => send(requests, { id, replyTo, args: [value] }));
  subscriber.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
    for (const reply of unpackr.unpack(frame) as Reply[]) calls.settle(reply);
  });
  await subscriber.subscribe(replyTo);
  return calls.call;
}

async function warm(call: Call, inFlight: number, forMs: number): Promise<void> {
  const until = Date.now() + forMs;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < until) await call(payload);
    }),
  );
}

async function run(call: Call, calls: number, inFlight: number): Promise<{ elapsedMs: number; latencies: Float64Array }> {
  // preallocated: a growing array of numbers in old space would slow every scavenge of the run
  const latencies = new Float64Array(calls);
  let started = 0;
  const begin = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < calls) {
        const index = started++;
        const t = performance.now();
        await call(payload);
        latencies[index] = performance.now() - t;
      }
    }),
  );
  return { elapsedMs: performance.now() - begin, latencies };
}

async function main(): Promise<void> {
  const call = system === 'intracom' ? await intracomCaller() : system === 'reference' ? await referenceCaller() : await baselineCaller();
  process.on('message', (message: { cmd: string; inFlight: number; ms: number; calls: number }) => {
    if (message.cmd === 'warm') void warm(call, message.inFlight, message.ms).then(() => send({ ev: 'warm' }));
    if (message.cmd === 'run') {
      const cpuBefore = process.cpuUsage();
      void run(call, message.calls, message.inFlight).then((ran) => {
        const cpu = process.cpuUsage(cpuBefore);
        send({ ev: 'ran', ...ran, cpuMs: (cpu.user + cpu.system) / 1000 });
      });
    }
    if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
