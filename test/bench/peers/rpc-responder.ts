/**
 * The responding side of the `rpc-*` benchmarks, in a process of its own.
 * BENCH_SYSTEM=intracom serves `echo` with RedisRPCClient; BENCH_SYSTEM=baseline
 * is the minimal hand-written ioredis responder of the issue: requests arrive
 * as msgpackr `{ id, replyTo, args }`, one PUBLISH per reply to the caller's
 * channel, ioredis defaults. BENCH_SYSTEM=reference is the issue's
 * hand-written design that coalesces: requests arrive as a msgpackr array per
 * frame, and the replies of one tick leave as one frame per caller.
 */
import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { coalescingPublisher } from './coalesce';

const system = process.env.BENCH_SYSTEM;
const url = process.env.BENCH_REDIS_URL as string;
const namespace = process.env.BENCH_NAMESPACE ?? '';
const send = (message: unknown): void => void process.send?.(message);

async function main(): Promise<void> {
  if (system === 'intracom') {
    const rpc = new RedisRPCClient({ service: 'bench-rpc', redis: url, namespace });
    await rpc.expose('echo', (args) => args[0]);
    await rpc.connect();
  } else if (system === 'reference') {
    const packr = new Packr({ useRecords: true });
    const unpackr = new Unpackr({ useRecords: true });
    const subscriber = new Redis(url);
    const send = coalescingPublisher(new Redis(url), packr);
    subscriber.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
      for (const request of unpackr.unpack(frame) as Array<{ id: number; replyTo: string; args: unknown[] }>) send(request.replyTo, { id: request.id, result: request.args[0] });
    });
    await subscriber.subscribe(`${namespace}:bench.reference.rpc`);
  } else {
    const packr = new Packr();
    const unpackr = new Unpackr();
    const subscriber = new Redis(url);
    const publisher = new Redis(url);
    subscriber.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      const request = unpackr.unpack(message) as { id: number; replyTo: string; args: unknown[] };
      void publisher.publish(request.replyTo, packr.pack({ id: request.id, result: request.args[0] }));
    });
    await subscriber.subscribe(`${namespace}:bench.baseline.rpc`);
  }
  const cpuAtReady = process.cpuUsage();
  process.on('message', (message: { cmd: string }) => {
    if (message.cmd === 'cpu') {
      const cpu = process.cpuUsage(cpuAtReady);
      send({ ev: 'cpu', ms: (cpu.user + cpu.system) / 1000 });
    }
    if (message.cmd === 'exit') process.exit(0); // a clean exit (CPU profiles are written on exit)
  });
  send({ ev: 'ready' });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
