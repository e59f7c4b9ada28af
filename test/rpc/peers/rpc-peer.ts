/**
 * A serving instance in a process of its own, for the cross-process RPC
 * tests. Environment: TEST_REDIS_URL, TEST_NAMESPACE, TEST_SERVICE.
 * Tells the test over IPC when it is ready, when a handler starts, when a
 * handler's signal fires, and how many calls it handled.
 */
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { PeerFunctions } from './functions';

const send = (message: unknown): void => void process.send?.(message);
let handled = 0;

async function main(): Promise<void> {
  const rpc = new RedisRPCClient({
    service: process.env.TEST_SERVICE as string,
    redis: process.env.TEST_REDIS_URL as string,
    namespace: process.env.TEST_NAMESPACE,
    registry: { heartbeatMs: 200, ttlMs: 1000 },
  });
  await rpc.implement(PeerFunctions, {
    whoami: ([i]) => {
      handled += 1;
      return { i, instanceId: rpc.instanceId };
    },
    fail: () => {
      throw Object.assign(new RangeError('out of range'), { code: 'E_RANGE', data: { limit: 10 } });
    },
    sleep: ([ms], context) =>
      new Promise<string>((resolve, reject) => {
        send({ ev: 'started', requestId: context.requestId, instanceId: rpc.instanceId });
        const timer = setTimeout(() => resolve(rpc.instanceId), ms);
        context.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          send({ ev: 'aborted', requestId: context.requestId, reason: (context.signal.reason as Error)?.name });
          reject(context.signal.reason);
        });
      }),
    idempotentSleep: ([ms], context) =>
      new Promise<string>((resolve) => {
        send({ ev: 'started', requestId: context.requestId, instanceId: rpc.instanceId });
        setTimeout(() => resolve(rpc.instanceId), ms);
      }),
  });
  await rpc.connect();
  process.on('message', (message: { cmd?: string }) => {
    if (message?.cmd === 'handled') send({ ev: 'handled', handled });
  });
  send({ ev: 'ready', instanceId: rpc.instanceId });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
