/**
 * Scenarios `rpc-serial` (one call at a time) and `rpc-concurrent` (64 calls
 * in flight): calls/s, p50 and p99 of a round trip from this process to a
 * responder in another, intracom's RedisRPCClient against the minimal
 * hand-written ioredis RPC of the issue (request PUBLISHed as msgpackr
 * `{ id, replyTo, args }`, one PUBLISH per request and per reply, reply to
 * the caller's own channel, pending calls in a Map, ioredis defaults), in the
 * same run, on the same server. Targets: serial p50 <= 1.1x the baseline's;
 * 64 in flight >= 3x the baseline's calls/s.
 */
import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { spawnPeer, type Peer } from '../../support/processes';
import { msSince, result, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'intracom' | 'baseline';

interface Caller {
  call(value: unknown): Promise<unknown>;
  close(): Promise<void>;
}

async function intracomCaller(context: BenchContext): Promise<Caller> {
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: context.redisUrl, namespace: context.namespace });
  await rpc.connect();
  return { call: (value) => rpc.callService('bench-rpc', 'echo', value), close: () => rpc.close() };
}

async function baselineCaller(context: BenchContext): Promise<Caller> {
  const packr = new Packr();
  const unpackr = new Unpackr();
  const publisher = new Redis(context.redisUrl);
  const subscriber = new Redis(context.redisUrl);
  const replyTo = `${context.namespace}:bench.baseline.reply.${process.pid}`;
  const requests = `${context.namespace}:bench.baseline.rpc`;
  const pending = new Map<number, (value: unknown) => void>();
  let nextId = 0;
  subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
    const reply = unpackr.unpack(message) as { id: number; result: unknown };
    const resolve = pending.get(reply.id);
    if (resolve === undefined) return;
    pending.delete(reply.id);
    resolve(reply.result);
  });
  await subscriber.subscribe(replyTo);
  return {
    call(value) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        void publisher.publish(requests, packr.pack({ id, replyTo, args: [value] }));
      });
    },
    async close() {
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}

const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };

async function runSerial(caller: Caller, calls: number): Promise<{ elapsedMs: number; latencies: number[] }> {
  for (let i = 0; i < 300; i++) await caller.call(payload);
  const latencies: number[] = new Array(calls);
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const t = process.hrtime.bigint();
    await caller.call(payload);
    latencies[i] = msSince(t);
  }
  return { elapsedMs: msSince(started), latencies };
}

async function runConcurrent(caller: Caller, calls: number, inFlight: number): Promise<{ elapsedMs: number; latencies: number[] }> {
  await Promise.all(Array.from({ length: inFlight }, async () => {
    for (let i = 0; i < 20; i++) await caller.call(payload);
  }));
  const latencies: number[] = [];
  let started = 0;
  const begin = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < calls) {
        started += 1;
        const t = process.hrtime.bigint();
        await caller.call(payload);
        latencies.push(msSince(t));
      }
    }),
  );
  return { elapsedMs: msSince(begin), latencies };
}

async function withResponders<T>(context: BenchContext, body: (peers: Record<System, Peer>) => Promise<T>): Promise<T> {
  const env = { BENCH_REDIS_URL: context.redisUrl, BENCH_NAMESPACE: context.namespace };
  const peers = {
    intracom: spawnPeer('test/bench/peers/rpc-responder.ts', { ...env, BENCH_SYSTEM: 'intracom' }),
    baseline: spawnPeer('test/bench/peers/rpc-responder.ts', { ...env, BENCH_SYSTEM: 'baseline' }),
  };
  try {
    await Promise.all([peers.intracom.next((m: { ev: string }) => m.ev === 'ready'), peers.baseline.next((m: { ev: string }) => m.ev === 'ready')]);
    return await body(peers);
  } finally {
    await Promise.all([peers.intracom.kill(), peers.baseline.kill()]);
  }
}

async function measure(context: BenchContext, name: 'rpc-serial' | 'rpc-concurrent'): Promise<BenchResult[]> {
  const serialCalls = Math.max(500, Math.round(10_000 * context.scale));
  const concurrentCalls = Math.max(5_000, Math.round(150_000 * context.scale));
  return withResponders(context, async () => {
    const callers: Record<System, Caller> = { baseline: await baselineCaller(context), intracom: await intracomCaller(context) };
    const samples: Record<System, { elapsedMs: number; latencies: number[]; calls: number }[]> = { baseline: [], intracom: [] };
    try {
      // alternate the systems in rounds so that drift of the machine hits both alike
      for (let round = 0; round < 3; round++) {
        for (const system of ['baseline', 'intracom'] as const) {
          const calls = Math.round((name === 'rpc-serial' ? serialCalls : concurrentCalls) / 3);
          const run = name === 'rpc-serial' ? await runSerial(callers[system], calls) : await runConcurrent(callers[system], calls, 64);
          samples[system].push({ ...run, calls });
        }
      }
    } finally {
      await Promise.all([callers.baseline.close(), callers.intracom.close()]);
    }
    return (['baseline', 'intracom'] as const).map((system) => {
      const runs = samples[system];
      const calls = runs.reduce((sum, r) => sum + r.calls, 0);
      const elapsedMs = runs.reduce((sum, r) => sum + r.elapsedMs, 0);
      return result(name, system, calls, elapsedMs, runs.flatMap((r) => r.latencies), { in_flight: name === 'rpc-serial' ? 1 : 64 });
    });
  });
}

/** `npm run bench rpc`: both scenarios; their result lines are named `rpc-serial` and `rpc-concurrent`. */
export const scenario: Scenario = {
  name: 'rpc',
  async run(context) {
    return [...(await measure(context, 'rpc-serial')), ...(await measure(context, 'rpc-concurrent'))];
  },
};
