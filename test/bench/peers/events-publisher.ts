/**
 * The publishing side of the `events` benchmark, in a process of its own
 * (one per system). BENCH_SYSTEM=intracom publishes with
 * RedisClient.publishAndForget on BENCH_TOPIC, `intracom-publish` with
 * RedisClient.publish (a promise per event, not awaited); `baseline` (and `control`, the same code again) sends one
 * ioredis PUBLISH of a msgpackr message per event; `autopipelining` is the
 * same with ioredis `enableAutoPipelining`; `reference` is the issue's
 * hand-written coalescing design, one msgpackr-records array frame per tick
 * (test/bench/peers/coalesce.ts). Events are `{ i, t, name }`, `name` of
 * BENCH_PAYLOAD_BYTES characters.
 *
 * Publishing runs under credit flow control: at most WINDOW events sent and
 * not yet received, as told by `{ cmd: 'credit', received }` (relayed from
 * the subscriber), so nothing is dropped by Redis's output-buffer limits.
 * Commands: `{ cmd: 'run', ms }` publishes for `ms`, then answers `{ ev:
 * 'ran', sent, elapsedMs, cpuMs }` (`sent` counts from the process start);
 * `{ cmd: 'exit' }`.
 */
import { benchAuth, isIntracom } from './benchAuth';
import Redis from 'ioredis';
import { Packr } from 'msgpackr';
import { performance } from 'node:perf_hooks';
import { RedisClient } from '../../../src/client/RedisClient';
import { coalescingPublisher } from './coalesce';
import { machineNow } from './machineClock';

const WINDOW = 20_000;
const CHUNK = 256;

const system = process.env.BENCH_SYSTEM as string;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const topic = process.env.BENCH_TOPIC as string;
const channel = namespace ? `${namespace}:${topic}` : topic;
const name = 'x'.repeat(Number(process.env.BENCH_PAYLOAD_BYTES ?? 100));
const send = (message: unknown): void => void process.send?.(message);

async function publisher(): Promise<(i: number) => unknown> {
  if (isIntracom(system) || system === 'intracom-publish') {
    const client = new RedisClient({ service: 'bench-publisher', redis: url, namespace, auth: benchAuth(system, 'bench-publisher') });
    await client.connect();
    if (system === 'intracom-publish') return (i) => client.publish(topic, { i, t: machineNow(), name });
    return (i) => client.publishAndForget(topic, { i, t: machineNow(), name });
  }
  if (system === 'reference') {
    const publish = coalescingPublisher(new Redis(url), new Packr({ useRecords: true }));
    return (i) => publish(channel, { i, t: machineNow(), name });
  }
  const packr = new Packr();
  const redis = new Redis(url, { enableAutoPipelining: system === 'autopipelining' });
  return (i) => redis.publish(channel, packr.pack({ i, t: machineNow(), name }));
}

async function main(): Promise<void> {
  const publish = await publisher();
  let received = 0;
  let sent = 0;
  const run = async (forMs: number): Promise<void> => {
    const until = performance.now() + forMs;
    while (performance.now() < until) {
      for (let k = 0; k < CHUNK; k++) publish(sent++);
      // yield so that what was sent this tick leaves; the credit window bounds what is in flight
      do await new Promise((resolve) => setImmediate(resolve));
      while (sent - received > WINDOW);
    }
  };
  process.on('message', (message: { cmd: string; received: number; ms: number }) => {
    if (message.cmd === 'credit') received = message.received;
    if (message.cmd === 'run') {
      const cpuBefore = process.cpuUsage();
      const started = performance.now();
      void run(message.ms).then(() => {
        const cpu = process.cpuUsage(cpuBefore);
        send({ ev: 'ran', sent, elapsedMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 });
      });
    }
    if (message.cmd === 'exit') process.exit(0);
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
