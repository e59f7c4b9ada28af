import { RedisRPCClient, MemoryBus } from './src/index';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
async function main() {
  const bus = new MemoryBus();
  const server = new RedisRPCClient({ service: 'calc', route: 'memory', memoryBus: bus });
  await server.expose('echo', (a) => a[0]);
  await server.connect();
  const caller = new RedisRPCClient({ service: 'web', route: 'memory', memoryBus: bus });
  await caller.connect();
  for (let r = 0; r < 5; r++) {
    const end = Date.now() + 1000; let n = 0;
    while (Date.now() < end) { await caller.callService('calc', 'echo', payload); n++; }
    console.log('serial µs/call', (1000000 / n).toFixed(2));
  }
  await caller.close(); await server.close();
}
main();
