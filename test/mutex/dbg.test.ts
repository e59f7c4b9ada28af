import Redis from 'ioredis';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { startRedis } from '../support/redis-server';
it('dbg', async function () {
  this.timeout(30000);
  const redis = await startRedis({ private: true });
  const t0 = Date.now(); const log = (m: string) => console.log(Date.now() - t0, m);
  const mutex = new RedisMutex({ redis: redis.url, namespace: redis.namespace, commandTimeoutMs: 1000 });
  const admin = new Redis(redis.url); admin.on('error', () => undefined);
  log('P ' + await mutex.P('outage', 'n', 60_000));
  await admin.call('SHUTDOWN', 'NOSAVE').catch((e) => log('shutdown ' + e.message));
  for (const call of [() => mutex.P('other', 'n', 1000), () => mutex.inspect('outage')]) {
    try { await call(); log('resolved?!') } catch (e) { log('failed ' + (e as Error).message) }
  }
  await (redis.restart as () => Promise<void>)(); log('restarted');
  for (let i = 0; i < 40; i++) { try { log('inspect ' + JSON.stringify(await mutex.inspect('outage'))); break; } catch (e) { log('x ' + (e as Error).message) } await new Promise((r) => setTimeout(r, 250)); }
  await mutex.close(); admin.disconnect(); await redis.stop();
});
