/**
 * Scenarios `fire-and-forget` (one consumer process: queries/s from send to
 * processed, p50/p99 of send-to-processing) and `broadcast` (three consumer
 * processes: deliveries/s), intracom's durable queries against the minimal
 * hand-written Redis Streams loop (XADD; XREADGROUP COUNT 100 BLOCK; one
 * XACK per batch; for broadcast, one group per consumer), same run, same
 * server. Both sides run under the same credit window, so nothing piles up
 * beyond it.
 */
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { spawnPeer, type Peer } from '../../support/processes';
import { result, type BenchContext, type BenchResult, type Scenario } from '../harness';

const WINDOW = 5_000;
const CHUNK = 200;

type Kind = 'fire-and-forget' | 'broadcast';

interface Producer {
  send(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function measure(kind: Kind, system: 'intracom' | 'baseline', context: BenchContext, durationMs: number): Promise<BenchResult> {
  const consumers = kind === 'broadcast' ? 3 : 1;
  const run = `${kind}-${Date.now()}`;
  const service = `bench-${run}`;
  const stream = `${context.namespace}:bench-baseline:${run}`;
  const peers: Peer[] = [];
  for (let c = 0; c < consumers; c++) {
    peers.push(
      spawnPeer('test/bench/peers/queue-consumer.ts', {
        BENCH_SYSTEM: system,
        BENCH_REDIS_URL: context.redisUrl,
        BENCH_NAMESPACE: context.namespace,
        BENCH_SERVICE: service,
        BENCH_INSTANCE: `consumer-${c}`,
        BENCH_STREAM: stream,
        BENCH_GROUP: kind === 'broadcast' ? `g${c}` : 'g',
      }),
    );
  }
  await Promise.all(peers.map((p) => p.next((m: { ev: string }) => m.ev === 'ready', 30_000)));

  let producer: Producer;
  if (system === 'intracom') {
    const rpc = new RedisRPCClient({ service: `${service}-producer`, redis: context.redisUrl, namespace: context.namespace, queues: { consume: false } });
    await rpc.connect();
    const t = () => performance.timeOrigin + performance.now();
    producer = {
      send: (i) => (kind === 'broadcast' ? rpc.broadcast(service, 'work', { i, t: t() }) : rpc.fireAndForget(service, 'work', { i, t: t() })),
      close: () => rpc.close(),
    };
  } else {
    const packr = new Packr();
    const redis = new Redis(context.redisUrl);
    producer = {
      send: (i) => redis.xadd(stream, '*', 'm', packr.pack({ i, t: performance.timeOrigin + performance.now() })),
      close: async () => void redis.disconnect(),
    };
  }

  const admin = new Redis(context.redisUrl);
  const redisCpu = async (): Promise<number> => {
    const info = await admin.info('cpu');
    const field = (name: string) => Number(/^name:([\d.]+)/m.exec(info.replace(name, 'name'))?.[1] ?? 0);
    return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
  };
  const redisCpuBefore = await redisCpu();
  const producerCpuBefore = process.cpuUsage();
  const acknowledged = peers.map(() => 0);
  peers.forEach((peer, index) =>
    peer.child.on('message', (m: { ev: string; received?: number }) => {
      if (m.ev === 'progress' && m.received !== undefined) acknowledged[index] = m.received;
    }),
  );
  const started = process.hrtime.bigint();
  const deadline = performance.now() + durationMs;
  let sent = 0;
  while (performance.now() < deadline) {
    const chunk: Array<Promise<unknown>> = [];
    for (let k = 0; k < CHUNK; k++) chunk.push(producer.send(sent++));
    await Promise.all(chunk);
    while (sent - Math.min(...acknowledged) > WINDOW) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const finished = await Promise.all(peers.map((p) => p.ask<{ received: number; latencies: number[]; cpuMs: number }>({ cmd: 'expect', total: sent }, 'finished', 120_000)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const producerCpu = process.cpuUsage(producerCpuBefore);
  const redisCpuMs = (await redisCpu()) - redisCpuBefore;
  admin.disconnect();
  await producer.close();
  for (const peer of peers) peer.send({ cmd: 'exit' });
  await Promise.all(peers.map((p) => Promise.race([p.exited(), new Promise((resolve) => setTimeout(resolve, 2000))])));
  await Promise.all(peers.map((p) => p.kill()));
  const deliveries = finished.reduce((sum, f) => sum + f.received, 0);
  // CPU per delivery, in µs, by process: where the time goes on a machine whose cores all three share
  const perDelivery = (ms: number) => Math.round((ms * 1000) / Math.max(1, deliveries) * 100) / 100;
  return result(kind, system, deliveries, elapsedMs, finished.flatMap((f) => f.latencies), {
    queries: sent,
    consumers,
    lost: sent * consumers - deliveries,
    cpu_us_producer: perDelivery((producerCpu.user + producerCpu.system) / 1000),
    cpu_us_consumers: perDelivery(finished.reduce((sum, f) => sum + f.cpuMs, 0)),
    cpu_us_redis: perDelivery(redisCpuMs),
    ...(process.env.BENCH_DEBUG ? { consumer_stats: finished.map((f) => (f as { stats?: unknown }).stats) } : {}),
  });
}

export const scenario: Scenario = {
  name: 'queues',
  async run(context) {
    const durationMs = Math.max(1000, 4000 * context.scale);
    const results: BenchResult[] = [];
    for (const kind of ['fire-and-forget', 'broadcast'] as const) {
      results.push(await measure(kind, 'baseline', context, durationMs));
      results.push(await measure(kind, 'intracom', context, durationMs));
    }
    return results;
  },
};
