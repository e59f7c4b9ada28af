/**
 * The calling side of the `rpc-*` benchmarks, in a process of its own (one
 * per system, so that neither system's code shapes the other's JIT
 * feedback). BENCH_SYSTEM=intracom calls `echo` with RedisRPCClient
 * (`intracom-per-call`: with `spread: 'call'`); BENCH_SYSTEM=baseline is the
 * minimal hand-written ioredis caller of the issue: requests PUBLISHed as
 * msgpackr `{ id, replyTo, args }`, one PUBLISH per request, replies on the
 * caller's own channel, pending calls in a Map, ioredis defaults;
 * `autopipelining` is the same code with ioredis `enableAutoPipelining`.
 * BENCH_SYSTEM=reference is the hand-written design that coalesces
 * the requests (and the responder the replies) of one tick into one frame
 * (test/bench/peers/coalesce.ts). The payload is the issue's `{ id, name,
 * ok }` with a `name` of BENCH_PAYLOAD_BYTES characters (default 100).
 * With BENCH_EXTRA_TOPICS=K, the connection (or client) that receives the
 * replies also holds K idle topics, subscribed before `ready`.
 *
 * Commands (IPC): `{ cmd: 'target', service?, channels? }` (answers
 * `target`); `{ cmd: 'warm', inFlight, ms }` runs untimed for `ms`;
 * `{ cmd: 'run', calls, inFlight, ms? }` answers `{ ev: 'ran', elapsedMs,
 * calls, latencies, cpuMs, frames }` (`frames`: sent and received by an intracom caller); `{ cmd: 'exit' }`.
 */
import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { benchAuth, benchRpcService, isIntracom } from './benchAuth';
import { coalescingPublisher } from './coalesce';
import { idleTopics, subscribeIdle } from './idleTopics';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const send = (message: unknown): void => void process.send?.(message);
const extraTopics = idleTopics(`bench.${system}.caller.${process.pid}`, Number(process.env.BENCH_EXTRA_TOPICS ?? 0));
/** The payload shape, `{ id, name, ok }`, with `name` of BENCH_PAYLOAD_BYTES characters (about that many bytes encoded). */
const payload = { id: 'c8a1f6e2-3b1d-4f5e-9a7c', name: 'x'.repeat(Number(process.env.BENCH_PAYLOAD_BYTES ?? 100)), ok: true };

type Call = (value: unknown) => Promise<unknown>;

/**
 * Where calls go, changed by `{ cmd: 'target', service, channels }`: the
 * service intracom calls (`spread` per `{ spread }`), the request channels
 * the hand-written callers go round-robin over (one per instance).
 */
const target = { service: benchRpcService(system), channels: [`${namespace}:bench.${system}.rpc`], cursor: 0 };

/** Frames the intracom caller sent and received so far (none for the hand-written systems). */
let frames = (): { sent: number; received: number } => ({ sent: 0, received: 0 });

async function intracomCaller(spread: 'burst' | 'call'): Promise<Call> {
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: url, namespace, spread, auth: benchAuth(system, 'bench-caller') });
  await rpc.connect();
  await subscribeIdle(rpc.client, extraTopics, namespace);
  frames = () => {
    const stats = rpc.client.stats();
    return { sent: stats.framesSent, received: stats.framesReceived };
  };
  return (value) => rpc.callService(target.service, 'echo', value);
}

function nextChannel(): string {
  const channels = target.channels;
  const channel = channels[target.cursor++ % channels.length];
  if (target.cursor >= channels.length) target.cursor = 0;
  return channel;
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

/** The naive caller; with `autoPipelining`, the same code on connections with ioredis `enableAutoPipelining`. */
async function baselineCaller(autoPipelining: boolean): Promise<Call> {
  const packr = new Packr();
  const unpackr = new Unpackr();
  const publisher = new Redis(url, { enableAutoPipelining: autoPipelining });
  const subscriber = new Redis(url);
  const replyTo = `${namespace}:bench.${system}.reply.${process.pid}`;
  const calls = numberedCalls((id, value) => void publisher.publish(nextChannel(), packr.pack({ id, replyTo, args: [value] })));
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => calls.settle(unpackr.unpack(message) as Reply));
  await subscriber.subscribe(replyTo);
  await subscribeIdle(subscriber, extraTopics, namespace);
  return calls.call;
}

async function referenceCaller(): Promise<Call> {
  const packr = new Packr({ useRecords: true });
  const unpackr = new Unpackr({ useRecords: true });
  const subscriber = new Redis(url);
  const send = coalescingPublisher(new Redis(url), packr);
  const replyTo = `${namespace}:bench.reference.reply.${process.pid}`;
  const calls = numberedCalls((id, value) => send(nextChannel(), { id, replyTo, args: [value] }));
  subscriber.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
    for (const reply of unpackr.unpack(frame) as Reply[]) calls.settle(reply);
  });
  await subscriber.subscribe(replyTo);
  await subscribeIdle(subscriber, extraTopics, namespace);
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

/** `calls` calls, or as many as fit in `forMs` when given (then `calls` only sizes the latency buffer). */
async function run(call: Call, calls: number, inFlight: number, forMs?: number): Promise<{ elapsedMs: number; calls: number; latencies: Float64Array }> {
  // preallocated: a growing array of numbers in old space would slow every scavenge of the run
  let latencies = new Float64Array(calls);
  let started = 0;
  const begin = performance.now();
  const until = forMs === undefined ? Infinity : begin + forMs;
  const more = forMs === undefined ? () => started < calls : () => performance.now() < until;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (more()) {
        const index = started++;
        if (index >= latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        const t = performance.now();
        await call(payload);
        latencies[index] = performance.now() - t;
      }
    }),
  );
  return { elapsedMs: performance.now() - begin, calls: started, latencies: latencies.subarray(0, started) };
}

async function main(): Promise<void> {
  const call =
    isIntracom(system) || system === 'intracom-per-call'
      ? await intracomCaller(system === 'intracom-per-call' ? 'call' : 'burst')
      : system === 'reference'
        ? await referenceCaller()
        : await baselineCaller(system === 'autopipelining');
  process.on('message', (message: { cmd: string; inFlight: number; ms: number; calls: number; service?: string; channels?: string[] }) => {
    if (message.cmd === 'target') {
      if (message.service !== undefined) target.service = message.service;
      if (message.channels !== undefined) target.channels = message.channels;
      target.cursor = 0;
      send({ ev: 'target' });
    }
    if (message.cmd === 'warm') void warm(call, message.inFlight, message.ms).then(() => send({ ev: 'warm' }));
    if (message.cmd === 'run') {
      const cpuBefore = process.cpuUsage();
      const framesBefore = frames();
      void run(call, message.calls, message.inFlight, message.ms).then((ran) => {
        const cpu = process.cpuUsage(cpuBefore);
        const framesAfter = frames();
        send({ ev: 'ran', ...ran, cpuMs: (cpu.user + cpu.system) / 1000, frames: { sent: framesAfter.sent - framesBefore.sent, received: framesAfter.received - framesBefore.received } });
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
