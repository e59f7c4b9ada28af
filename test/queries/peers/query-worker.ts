/**
 * An instance of a service that consumes durable queries, in a process of its
 * own. Every processing is recorded in Redis itself (HINCRBY on a ledger hash,
 * by query id) before the handler returns, so a SIGKILL cannot hide one.
 * Environment: TEST_REDIS_URL, TEST_NAMESPACE, TEST_SERVICE, TEST_INSTANCE_ID,
 * TEST_LEDGER (hash key), TEST_VISIBILITY_MS, TEST_SLOW_MS, TEST_BATCH_SIZE.
 */
import Redis from 'ioredis';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';

const send = (message: unknown): void => void process.send?.(message);

async function main(): Promise<void> {
  const ledgerKey = process.env.TEST_LEDGER ?? 'ledger';
  const ledger = new Redis(process.env.TEST_REDIS_URL as string);
  ledger.on('error', () => undefined); // Redis restarts are part of some tests
  const slowMs = Number(process.env.TEST_SLOW_MS ?? 0);
  const rpc = new RedisRPCClient({
    service: process.env.TEST_SERVICE ?? 'worker',
    instanceId: process.env.TEST_INSTANCE_ID,
    redis: process.env.TEST_REDIS_URL,
    namespace: process.env.TEST_NAMESPACE,
    registry: { heartbeatMs: 200, ttlMs: 1000 },
    queues: { visibilityTimeoutMs: Number(process.env.TEST_VISIBILITY_MS ?? 2000), blockMs: 200, broadcastRetentionMs: 60_000, batchSize: Number(process.env.TEST_BATCH_SIZE ?? 100) },
  });
  rpc.handle('record', async (_query, context) => {
    if (slowMs > 0) await new Promise((resolve) => setTimeout(resolve, slowMs));
    await ledger.hincrby(ledgerKey, `${context.type}:${context.queryId}`, 1);
  });
  rpc.handle('echo', (query) => query);
  send({ ev: 'connecting' });
  await rpc.connect();
  process.on('message', (command: { cmd: string }) => {
    if (command.cmd === 'close') {
      void rpc.close().then(() => {
        ledger.disconnect();
        send({ ev: 'closed' });
        process.disconnect?.();
      });
    }
  });
  send({ ev: 'ready', instanceId: rpc.instanceId });
}

main().catch((error: unknown) => {
  send({ ev: 'failed', error: String(error) });
  process.exitCode = 1;
});
