import { RedisRPCClient } from './src/rpc/RedisRPCClient';
import { spawnPeer } from './test/support/processes';
const url = 'redis://127.0.0.1:6399', ns = 'q';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
async function main() {
  const a = spawnPeer('test/bench/peers/rpc-responder.ts', { BENCH_REDIS_URL: url, BENCH_NAMESPACE: ns, BENCH_SYSTEM: 'intracom' });
  await a.next();
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: url, namespace: ns }); await rpc.connect();
  for (let i = 0; i < 3000; i++) await rpc.callService('bench-rpc', 'echo', payload);
  console.error('START');
  for (let i = 0; i < 5000; i++) await rpc.callService('bench-rpc', 'echo', payload);
  console.error('END');
  await rpc.close(); await a.kill();
}
main();
