/**
 * The receiving side of the `events` benchmark, in a process of its own.
 * BENCH_SYSTEM=intracom (and intracom-publish) uses RedisClient.subscribe on BENCH_TOPIC;
 * `baseline`, `control` and `autopipelining` are the minimal hand-written
 * ioredis subscriber (one msgpackr message per PUBLISH); `reference` reads
 * the coalescing design's msgpackr-records array frames. With
 * BENCH_EXTRA_TOPICS=K, K other topics are subscribed first (in one tick for
 * intracom, in one SUBSCRIBE for the others), so that delivery is measured
 * with 1 + K subscriptions.
 *
 * Sends `{ ev: 'progress', received }` every 4,096 events (the publisher's
 * credit). `{ cmd: 'expect', total }` answers `{ ev: 'finished', received,
 * latencies, cpuMs }` once `total` events arrived in all (or after 5 s
 * without reaching it: the difference is lost), with the latency samples
 * (every 64th event) and the CPU used since the previous answer.
 */
import { benchAuth } from './benchAuth';
import Redis from 'ioredis';
import { Unpackr } from 'msgpackr';
import { RedisClient } from '../../../src/client/RedisClient';
import { idleTopics, subscribeIdle } from './idleTopics';
import { machineNow } from './machineClock';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const topic = process.env.BENCH_TOPIC as string;
const extraTopics = idleTopics(topic, Number(process.env.BENCH_EXTRA_TOPICS ?? 0));
const channelOf = (name: string) => (namespace ? `${namespace}:${name}` : name);
const send = (message: unknown): void => void process.send?.(message);

let received = 0;
let expected = Infinity;
let latencies: number[] = [];
let cpuFrom = process.cpuUsage();
let giveUp: NodeJS.Timeout | undefined;

function onEvent(payload: { i: number; t: number }): void {
  received += 1;
  if ((received & 63) === 0) latencies.push(machineNow() - payload.t);
  if ((received & 4095) === 0) send({ ev: 'progress', received });
  if (received === expected) finish();
}

function finish(): void {
  if (giveUp !== undefined) clearTimeout(giveUp);
  giveUp = undefined;
  expected = Infinity;
  const cpu = process.cpuUsage(cpuFrom);
  cpuFrom = process.cpuUsage();
  send({ ev: 'finished', received, latencies, cpuMs: (cpu.user + cpu.system) / 1000 });
  latencies = [];
}

async function main(): Promise<void> {
  if (system?.startsWith('intracom')) {
    const client = new RedisClient({ service: 'bench-subscriber', redis: url, namespace, auth: benchAuth(system, 'bench-subscriber') });
    await client.connect();
    await subscribeIdle(client, extraTopics, namespace);
    await client.subscribe<{ i: number; t: number }>(topic, (payload) => onEvent(payload));
  } else {
    const unpackr = new Unpackr({ useRecords: system === 'reference' });
    const subscriber = new Redis(url);
    const hot = channelOf(topic);
    // nothing is published on the extra topics, so every message is the hot topic's
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      if (system === 'reference') for (const event of unpackr.unpack(message) as Array<{ i: number; t: number }>) onEvent(event);
      else onEvent(unpackr.unpack(message) as { i: number; t: number });
    });
    await subscribeIdle(subscriber, extraTopics, namespace);
    await subscriber.subscribe(hot);
  }
  process.on('message', (message: { cmd: string; total: number }) => {
    if (message.cmd === 'exit') process.exit(0);
    if (message.cmd !== 'expect') return;
    expected = message.total;
    if (received >= expected) return finish();
    giveUp = setTimeout(finish, 5_000);
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
