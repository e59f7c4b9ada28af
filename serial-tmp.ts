import Redis from 'ioredis';
import { Packr, Unpackr } from 'msgpackr';
import { RedisRPCClient } from './src/rpc/RedisRPCClient';
import { spawnPeer } from './test/support/processes';
const url = 'redis://127.0.0.1:6399', ns = 'q';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
async function main() {
  const env = { BENCH_REDIS_URL: url, BENCH_NAMESPACE: ns };
  const a = spawnPeer('test/bench/peers/rpc-responder.ts', { ...env, BENCH_SYSTEM: 'intracom' });
  const b = spawnPeer('test/bench/peers/rpc-responder.ts', { ...env, BENCH_SYSTEM: 'baseline' });
  await a.next(); await b.next();
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: url, namespace: ns }); await rpc.connect();
  const packr = new Packr(), unpackr = new Unpackr(); const pub = new Redis(url), sub = new Redis(url);
  const pending = new Map<number, (v: unknown) => void>(); let id = 0; const replyTo = `${ns}:bench.baseline.reply.x`;
  sub.on('messageBuffer', (_c: Buffer, m: Buffer) => { const r = unpackr.unpack(m); const f = pending.get(r.id); pending.delete(r.id); f?.(r.result); });
  await sub.subscribe(replyTo);
  const base = (v: unknown) => new Promise((res) => { const i = id++; pending.set(i, res); void pub.publish(`${ns}:bench.baseline.rpc`, packr.pack({ id: i, replyTo, args: [v] })); });
  const intra = (v: unknown) => rpc.callService('bench-rpc', 'echo', v);
  const basem = (v: unknown) => new Promise((res) => { const i = id++; pending.set(i, res); queueMicrotask(() => void pub.publish(`${ns}:bench.baseline.rpc`, packr.pack([1, { id: i, replyTo, args: [v] }]).subarray(2))); });
  const sys = { base, intra, basem } as Record<string, (v: unknown) => Promise<unknown>>;
  for (let round = 0; round < 5; round++) for (const name of ['base', 'intra']) {
    const lat: number[] = [];
    const peer = name === 'intra' ? a : b; peer.send({ cmd: 'cpu' }); const c0 = (await peer.next((m: any) => m.ev === 'cpu')) as any; const my0 = process.cpuUsage();
    for (let i = 0; i < 3000; i++) { const t = process.hrtime.bigint(); await sys[name](payload); lat.push(Number(process.hrtime.bigint() - t) / 1000); }
    lat.sort((x, y) => x - y);
    peer.send({ cmd: 'cpu' }); const c1 = (await peer.next((m: any) => m.ev === 'cpu')) as any; const my1 = process.cpuUsage(my0);
    console.log(name, 'responder cpu µs/call', ((c1.usage.user + c1.usage.system - c0.usage.user - c0.usage.system) / 3000).toFixed(1), 'user', ((c1.usage.user - c0.usage.user) / 3000).toFixed(1), 'caller cpu µs/call', ((my1.user + my1.system) / 3000).toFixed(1), 'user', (my1.user / 3000).toFixed(1));
    console.log(round, name, 'p50', lat[1500].toFixed(0), 'p90', lat[2700].toFixed(0), 'p99', lat[2970].toFixed(0));
  }
  await rpc.close(); pub.disconnect(); sub.disconnect(); await a.kill(); await b.kill();
}
main();
