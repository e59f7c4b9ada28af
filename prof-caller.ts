import { RedisRPCClient } from './src/rpc/RedisRPCClient';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
async function main() {
  const rpc = new RedisRPCClient({ service: 'bench-caller', redis: 'redis://127.0.0.1:6399', namespace: 'p' });
  await rpc.connect();
  const mode = process.env.MODE ?? 'conc'; for (let i = 0; i < 2000; i++) await rpc.callService('bench-rpc', 'echo', payload);
  const end = Date.now() + 6000; let n = 0;
  if (mode === 'conc') {
    await Promise.all(Array.from({ length: 64 }, async () => { while (Date.now() < end) { await rpc.callService('bench-rpc', 'echo', payload); n++; } }));
  } else {
    while (Date.now() < end) { await rpc.callService('bench-rpc', 'echo', payload); n++; }
  }
  console.log(mode, n / 6, 'calls/s', rpc.client.stats());
  await rpc.close();
}
main();
