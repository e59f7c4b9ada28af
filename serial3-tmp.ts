import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { spawnPeer } from './test/support/processes';
const url = 'redis://127.0.0.1:6399', ns = 'q';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
async function main() {
  const b = spawnPeer('test/bench/peers/rpc-responder.ts', { BENCH_REDIS_URL: url, BENCH_NAMESPACE: ns, BENCH_SYSTEM: 'baseline' });
  await b.next();
  const packr = new Packr(), unpackr = new Unpackr(); const pub = new Redis(url), sub = new Redis(url);
  const pending = new Map<number, (v: unknown) => void>(); let id = 0; const replyTo = `${ns}:bench.baseline.reply.x`;
  sub.on('messageBuffer', (_c: Buffer, m: Buffer) => { const r = unpackr.unpack(m); const f = pending.get(r.id); pending.delete(r.id); f?.(r.result); });
  await sub.subscribe(replyTo);
  const base = (v: unknown) => new Promise((res) => { const i = id++; pending.set(i, res); void pub.publish(`${ns}:bench.baseline.rpc`, packr.pack({ id: i, replyTo, args: [v] })); });
  for (let i = 0; i < 3000; i++) await base(payload);
  console.error('START');
  for (let i = 0; i < 5000; i++) await base(payload);
  console.error('END');
  pub.disconnect(); sub.disconnect(); await b.kill();
}
main();
