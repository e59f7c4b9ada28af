/**
 * Scenario `events`: events per second from this process to a subscriber in
 * another, intracom (frames coalesced per tick) against one PUBLISH per event
 * with plain ioredis. Both run under the same credit-based flow control (at
 * most WINDOW events sent and not yet received), so nothing is dropped:
 * `lost` = sent - received must be 0.
 */
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisClient } from '../../../src/client/RedisClient';
import { spawnPeer } from '../../support/processes';
import { result, type BenchContext, type BenchResult, type Scenario } from '../harness';

const WINDOW = 20_000;
const CHUNK = 256;

interface Publisher {
  publish(i: number): Promise<unknown>;
  close(): Promise<void>;
}

async function measure(system: 'intracom' | 'baseline', context: BenchContext, durationMs: number): Promise<BenchResult> {
  const topic = `bench.events.${system}`;
  const channel = context.namespace ? `${context.namespace}:${topic}` : topic;
  const peer = spawnPeer('test/bench/peers/events-subscriber.ts', {
    BENCH_SYSTEM: system,
    BENCH_REDIS_URL: context.redisUrl,
    BENCH_NAMESPACE: context.namespace,
    BENCH_TOPIC: system === 'intracom' ? topic : channel,
  });
  await peer.next((m: { ev: string }) => m.ev === 'ready');

  let publisher: Publisher;
  if (system === 'intracom') {
    const client = new RedisClient({ service: 'bench-publisher', redis: context.redisUrl, namespace: context.namespace });
    await client.connect();
    publisher = { publish: (i) => client.publish(topic, { i, t: performance.timeOrigin + performance.now() }), close: () => client.close() };
  } else {
    const packr = new Packr();
    const redis = new Redis(context.redisUrl);
    publisher = {
      publish: (i) => redis.publish(channel, packr.pack({ i, t: performance.timeOrigin + performance.now() })),
      close: async () => void redis.disconnect(),
    };
  }

  let acknowledged = 0;
  peer.child.on('message', (m: { ev: string; received?: number }) => {
    if (m.ev === 'progress' && m.received !== undefined) acknowledged = m.received;
  });
  const waitForCredit = async (sent: number): Promise<void> => {
    while (sent - acknowledged > WINDOW) await new Promise((resolve) => setImmediate(resolve));
  };

  const started = process.hrtime.bigint();
  const deadline = performance.now() + durationMs;
  let sent = 0;
  while (performance.now() < deadline) {
    let last: Promise<unknown> = Promise.resolve();
    for (let k = 0; k < CHUNK; k++) last = publisher.publish(sent++);
    last.catch((error: unknown) => console.error(`${system} publish failed:`, error));
    // yield so that what was sent this tick leaves; the credit window bounds what is in flight
    await new Promise((resolve) => setImmediate(resolve));
    await waitForCredit(sent);
  }
  const finished = await peer.ask<{ received: number; latencies: number[] }>({ cmd: 'expect', total: sent }, 'finished', 60_000);
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  await publisher.close();
  await peer.kill();
  return result('events', system, finished.received, elapsedMs, finished.latencies, { sent, received: finished.received, lost: sent - finished.received });
}

export const scenario: Scenario = {
  name: 'events',
  async run(context) {
    const durationMs = Math.max(500, 3000 * context.scale);
    const baseline = await measure('baseline', context, durationMs);
    const intracom = await measure('intracom', context, durationMs);
    return [baseline, intracom];
  },
};
