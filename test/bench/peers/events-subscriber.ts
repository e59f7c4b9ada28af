/**
 * The receiving side of the `events` benchmark, in a process of its own.
 * BENCH_SYSTEM=intracom uses RedisClient.subscribe; BENCH_SYSTEM=baseline is
 * the minimal hand-written ioredis subscriber (msgpackr, ioredis defaults).
 * Reports progress (for the publisher's flow control) and, at the end, the
 * count and the latency samples.
 */
import Redis from 'ioredis';
import { Unpackr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisClient } from '../../../src/client/RedisClient';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const topic = process.env.BENCH_TOPIC as string;
const send = (message: unknown): void => void process.send?.(message);

let received = 0;
let expected = Infinity;
const latencies: number[] = [];

function onEvent(payload: { i: number; t: number }): void {
  received += 1;
  if ((received & 63) === 0) latencies.push(performance.timeOrigin + performance.now() - payload.t);
  if ((received & 4095) === 0) send({ ev: 'progress', received });
  if (received === expected) finish();
}

function finish(): void {
  send({ ev: 'finished', received, latencies });
}

async function main(): Promise<void> {
  if (system === 'intracom') {
    const client = new RedisClient({ service: 'bench-subscriber', redis: url, namespace: process.env.BENCH_NAMESPACE });
    await client.connect();
    await client.subscribe<{ i: number; t: number }>(topic, (payload) => onEvent(payload));
  } else {
    const unpackr = new Unpackr();
    const subscriber = new Redis(url);
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => onEvent(unpackr.unpack(message) as { i: number; t: number }));
    await subscriber.subscribe(topic);
  }
  process.on('message', (message: { cmd: string; total: number }) => {
    if (message.cmd !== 'expect') return;
    expected = message.total;
    if (received >= expected) finish();
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
