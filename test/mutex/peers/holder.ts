/**
 * A process that holds mutexes on request, for the mutex tests. Messages:
 * `{ op: 'P', id, nodeId, timeoutMs }`, `{ op: 'V', id }`,
 * `{ op: 'tryAcquire', id, nodeId, timeoutMs }`, `{ op: 'acquire', id, nodeId,
 * timeoutMs, waitMs, retryDelayMs }` (a waiting acquire); each is answered with
 * `{ type: 'reply', op, result }` (`result` is the lock's fence and takenAt
 * for tryAcquire) or `{ type: 'reply', op, error }`.
 */
import { RedisMutex } from '../../../src/mutex/RedisMutex';

const { REDIS_URL = '', NAMESPACE = '' } = process.env;
const mutex = new RedisMutex({ redis: REDIS_URL, namespace: NAMESPACE });

interface Request {
  op: 'P' | 'V' | 'tryAcquire' | 'acquire';
  id: string;
  nodeId?: string;
  timeoutMs?: number;
  waitMs?: number;
  retryDelayMs?: number;
}

async function handle(request: Request): Promise<unknown> {
  if (request.op === 'P') return mutex.P(request.id, request.nodeId as string, request.timeoutMs as number);
  if (request.op === 'V') return mutex.V(request.id);
  if (request.op === 'acquire') {
    const lock = await mutex.acquire(request.id, { nodeId: request.nodeId, timeoutMs: request.timeoutMs, waitMs: request.waitMs, retryDelayMs: request.retryDelayMs, retryJitterMs: 0 });
    return { fence: lock.fence, takenAt: lock.takenAt };
  }
  const lock = await mutex.tryAcquire(request.id, { nodeId: request.nodeId, timeoutMs: request.timeoutMs });
  return lock === null ? null : { fence: lock.fence, takenAt: lock.takenAt };
}

process.on('message', (request: Request) => {
  handle(request).then(
    (result) => process.send?.({ type: 'reply', op: request.op, result }),
    (error: unknown) => process.send?.({ type: 'reply', op: request.op, error: String(error) }),
  );
});
process.send?.({ type: 'ready' });
