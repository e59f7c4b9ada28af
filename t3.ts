import Redis from 'ioredis';
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
  const admin = new Redis(r.url);
  await admin.config('RESETSTAT');
  execFileSync(process.execPath, ['--import', 'tsx', 't2.ts', r.url, String(N)], { stdio: 'inherit' });
  const stats = (await admin.info('commandstats')).split('\n').filter((l) => l.startsWith('cmdstat'));
  console.log(stats.join('\n'));
  console.log((await admin.info('cpu')).split('\n').filter((l) => l.includes('used_cpu')).join(' '));
  admin.disconnect(); await r.stop();
})();
