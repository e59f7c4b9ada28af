import { isCluster, scanAll, type RedisCommands } from '../route/connection';
import { queueEntry, type AttemptReply, type MutexKeys, type MutexStore, type QueueAs } from './MutexStore';
import { acquireScript, extendScript, inspectScript, leaveScript, releaseScript } from './scripts';

/** {@link MutexStore} on Redis: `SET NX PX` for `P`, Lua scripts for every compare-then-act step, pub/sub for hand-over notices. */
export class RedisMutexStore implements MutexStore {
  /** The connection that receives hand-over notices, made on the first wait. */
  private subscriber: RedisCommands | undefined;

  constructor(private readonly redis: RedisCommands) {}

  // The two of P/V are not async: each async layer costs the serial P+V cycle a promise and a turn of the microtask queue.
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.redis.set(key, value, 'PX', ttlMs, 'NX').then(isOk);
  }

  takeFenced(keys: MutexKeys, mutexId: string, token: string, takenAt: number, timeoutMs: number, nodeId: string, queue: QueueAs | null): Promise<AttemptReply> {
    return acquireScript.run(this.redis, [keys.lock, keys.fence, keys.queue, keys.waiters], [token, takenAt, timeoutMs, nodeId, mutexId, queue?.channel ?? '', queue?.aliveMs ?? 0], attemptReply);
  }

  releaseIfHeld(keys: MutexKeys, mutexId: string, value: string): Promise<boolean> {
    return releaseScript.run(this.redis, [keys.lock, keys.fence, keys.queue, keys.waiters], [value, mutexId], isOne);
  }

  leave(keys: MutexKeys, mutexId: string, token: string, timeoutMs: number, nodeId: string): Promise<boolean> {
    return leaveScript.run(this.redis, [keys.lock, keys.fence, keys.queue, keys.waiters], [queueEntry(token, timeoutMs, nodeId), token, mutexId], isOne);
  }

  async extendIfHeld(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await extendScript.run(this.redis, [key], [value, ttlMs])) === 1;
  }

  async read(key: string): Promise<[string, number] | null> {
    const reply = await inspectScript.run(this.redis, [key], []);
    return reply ? [String(reply[0]), Number(reply[1])] : null;
  }

  keys(pattern: string): Promise<string[]> {
    // SCAN, so that listing never blocks Redis; on a cluster, every master
    return scanAll(this.redis, pattern);
  }

  async listen(channel: string, onMessage: (message: string) => void): Promise<void> {
    // A connection of its own (a subscribed connection takes no other command); ioredis
    // resubscribes it after a reconnection, and notices missed meanwhile are made up for by
    // the waiters' periodic attempts.
    const redis = this.redis;
    const subscriber: RedisCommands = isCluster(redis) ? redis.duplicate([], { lazyConnect: true }) : redis.duplicate({ lazyConnect: true });
    this.subscriber = subscriber;
    subscriber.on('error', () => undefined); // its outages show on the command connection, which every attempt uses
    subscriber.on('message', (received: string, message: string) => {
      if (received === channel) onMessage(message);
    });
    try {
      await subscriber.connect();
      await subscriber.subscribe(channel);
    } catch (error) {
      subscriber.disconnect();
      if (this.subscriber === subscriber) this.subscriber = undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}

function isOk(reply: string | null): boolean {
  return reply === 'OK';
}

function isOne(reply: unknown): boolean {
  return reply === 1;
}

function attemptReply(reply: [number, number | string]): AttemptReply {
  const status = Number(reply[0]);
  return status === 2 ? [2, String(reply[1])] : [status as 0 | 1, Number(reply[1])];
}
