import { RedisRPCClient } from './src/index';
import { startRedis } from './test/support/redis-server';
import { execFileSync } from 'node:child_process';
(async () => {
  const r = await startRedis({ private: true });
  const worker = new RedisRPCClient({ service: 'w', redis: r.url });
  await worker.connect(); await worker.close();
  const sender = new RedisRPCClient({ service: 's', redis: r.url, queues: { consume: false } });
  await sender.connect();
  const N = 100000;
  for (let i = 0; i < N; i += 500) {
    const chunk = [];
    for (let k = 0; k < 500; k++) chunk.push(sender.fireAndForget('w', 'work', { i: i + k, t: 1 }));
    await Promise.all(chunk);
  }
  await sender.close();
  execFileSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', '--import', 'tsx', 't2.ts', r.url, String(N)], { stdio: 'inherit' });
  await r.stop();
})();
