/**
 * The responding side of the `rpc-*` benchmarks, in a process of its own.
 * BENCH_SYSTEM=intracom serves `echo` with RedisRPCClient (service
 * BENCH_SERVICE, default `bench-rpc`, or `bench-rpc-signed` / `bench-rpc-sealed`
 * for the systems with authentication); BENCH_SYSTEM=baseline is the minimal
 * hand-written ioredis responder of the issue: requests arrive as msgpackr
 * `{ id, replyTo, args }`, one PUBLISH per reply to the caller's channel,
 * ioredis defaults (`autopipelining`: the same with ioredis
 * `enableAutoPipelining`). BENCH_SYSTEM=reference is the hand-written
 * design that coalesces: requests arrive as a msgpackr array per frame, and
 * the replies of one tick leave as one frame per caller.
 *
 * BENCH_CHANNELS (comma-separated) makes the process host one instance per
 * channel, each with connections of its own (the hand-written systems listen
 * on those channels; intracom starts as many RedisRPCClients of
 * BENCH_SERVICE); by default it hosts one instance. Each instance counts the
 * requests it answered. With BENCH_EXTRA_TOPICS=K, each instance's
 * connection (or client) that receives the requests also holds K idle
 * topics, subscribed before `ready`.
 *
 * BENCH_SLOW (intracom only) makes every instance of the process slow:
 * `cpu:<ms>` spins the CPU that long per call (a CPU-bound handler),
 * `wait:<ms>` resolves after that long (a handler awaiting I/O).
 *
 * Commands (IPC): `{ cmd: 'cpu' }` answers `{ ev: 'cpu', ms, frames }`, the CPU used
 * since ready and the frames its intracom instances sent and received; `{ cmd: 'counts' }` answers `{ ev: 'counts', counts }`, per
 * instance; `{ cmd: 'exit' }`.
 */
import { benchAuth, benchRpcService, isIntracom } from './benchAuth';
import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { coalescingPublisher } from './coalesce';
import { idleTopics, subscribeIdle } from './idleTopics';

const system = process.env.BENCH_SYSTEM as string;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const listed = process.env.BENCH_CHANNELS;
const channels = listed === undefined ? [`${namespace}:bench.${system}.rpc`] : listed.split(',').filter(Boolean);
const send = (message: unknown): void => void process.send?.(message);
const extraTopics = idleTopics(`bench.${system}.responder.${process.pid}`, Number(process.env.BENCH_EXTRA_TOPICS ?? 0));
const [slowKind, slowMsText] = (process.env.BENCH_SLOW ?? '').split(':');
const slowMs = Number(slowMsText ?? 0);

/** The echo handler: at once, or slowed as BENCH_SLOW says. */
function echo(value: unknown): unknown {
  if (slowKind === 'wait') return new Promise((resolve) => setTimeout(resolve, slowMs, value));
  if (slowKind === 'cpu') {
    const until = performance.now() + slowMs;
    while (performance.now() < until);
  }
  return value;
}

/** The intracom instances of this process (for their frame counters). */
const clients: RedisRPCClient[] = [];

/** Starts one instance answering on `channel` (for intracom: one more instance of the service); `answered` counts its replies. */
async function instance(channel: string, answered: () => void): Promise<void> {
  if (isIntracom(system)) {
    const service = process.env.BENCH_SERVICE ?? benchRpcService(system);
    const rpc = new RedisRPCClient({ service, redis: url, namespace, auth: benchAuth(system, service) });
    clients.push(rpc);
    await rpc.expose('echo', (args) => {
      answered();
      return echo(args[0]);
    });
    await rpc.connect();
    await subscribeIdle(rpc.client, extraTopics, namespace);
  } else if (system === 'reference') {
    const packr = new Packr({ useRecords: true });
    const unpackr = new Unpackr({ useRecords: true });
    const subscriber = new Redis(url);
    const reply = coalescingPublisher(new Redis(url), packr);
    subscriber.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
      for (const request of unpackr.unpack(frame) as Array<{ id: number; replyTo: string; args: unknown[] }>) {
        answered();
        reply(request.replyTo, { id: request.id, result: request.args[0] });
      }
    });
    await subscriber.subscribe(channel);
    await subscribeIdle(subscriber, extraTopics, namespace);
  } else {
    const packr = new Packr();
    const unpackr = new Unpackr();
    const subscriber = new Redis(url);
    const publisher = new Redis(url, { enableAutoPipelining: system === 'autopipelining' });
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      const request = unpackr.unpack(message) as { id: number; replyTo: string; args: unknown[] };
      answered();
      void publisher.publish(request.replyTo, packr.pack({ id: request.id, result: request.args[0] }));
    });
    await subscriber.subscribe(channel);
    await subscribeIdle(subscriber, extraTopics, namespace);
  }
}

async function main(): Promise<void> {
  const counts = channels.map(() => 0);
  await Promise.all(channels.map((channel, i) => instance(channel, () => void (counts[i] += 1))));
  const cpuAtReady = process.cpuUsage();
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'cpu') {
      const cpu = process.cpuUsage(cpuAtReady);
      const frames = { sent: 0, received: 0 };
      for (const rpc of clients) {
        const stats = rpc.client.stats();
        frames.sent += stats.framesSent;
        frames.received += stats.framesReceived;
      }
      send({ ev: 'cpu', ms: (cpu.user + cpu.system) / 1000, frames });
    }
    if (message.cmd === 'counts') send({ ev: 'counts', counts: [...counts] });
    if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
