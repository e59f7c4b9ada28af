import { RedisRPCClient } from './src/index';
(async () => {
  const url = process.argv[2];
  const N = Number(process.argv[3]);
  let n = 0; let done: () => void = () => undefined; const all = new Promise<void>((res) => (done = res));
  const w2 = new RedisRPCClient({ service: 'w', redis: url, queues: { blockMs: 1000 } });
  w2.handle('work', () => { if (++n === N) done(); });
  const t0 = performance.now();
  await w2.connect();
  await all;
  console.log('consume', N, 'in', (performance.now() - t0).toFixed(0), 'ms');
  await w2.close();
})();
