import type { Cluster } from 'ioredis';
import { clusterSubscriber, isCluster, reviveWhenEnded, scanAll, type RedisCommands } from '../route/connection';
import { queueEntry, type AttemptReply, type MutexKeys, type MutexStore, type QueueAs } from './MutexStore';
import { acquireScript, extendScript, inspectScript, leaveScript, releaseScript } from './scripts';

/**
 * {@link MutexStore} on Redis: `SET NX PX` for `P`, Lua scripts for every compare-then-act step, sharded
 * pub/sub for hand-over notices, on one channel per (mutex, RedisMutex) in its lock's slot (Redis 7 serves
 * sharded pub/sub on one server too; on a cluster, only it reaches the lock's shard exactly).
 */
export class RedisMutexStore implements MutexStore {
  /** The connection that receives hand-over notices, made on the first wait. */
  private subscriber: Promise<RedisCommands> | undefined;
  private readonly handlers = new Map<string, (message: string) => void>();

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
    const subscriber = await this.connectSubscriber();
    this.handlers.set(channel, onMessage);
    try {
      await subscriber.ssubscribe(channel);
    } catch (error) {
      this.handlers.delete(channel);
      throw error;
    }
  }

  async unlisten(channel: string): Promise<void> {
    if (!this.handlers.delete(channel)) return;
    const subscriber = await this.subscriber;
    if (subscriber === undefined) return;
    await subscriber.sunsubscribe(channel);
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    this.handlers.clear();
    (await subscriber?.catch(() => undefined))?.disconnect();
  }

  /**
   * A connection of its own (a subscribed connection takes no other command); ioredis
   * resubscribes it after a reconnection (on a cluster, after a slot moves or a master fails
   * over), and notices missed meanwhile are made up for by the waiters' periodic attempts.
   */
  private connectSubscriber(): Promise<RedisCommands> {
    if (this.subscriber !== undefined) return this.subscriber;
    const redis = this.redis;
    const subscriber: RedisCommands = isCluster(redis) ? clusterSubscriber(redis as Cluster) : redis.duplicate({ lazyConnect: true });
    subscriber.on('error', () => undefined); // its outages show on the command connection, which every attempt uses
    subscriber.once('ready', () => reviveWhenEnded(subscriber, () => this.subscriber === connecting));
    const deliver = (received: string, message: string) => this.handlers.get(received)?.(message);
    subscriber.on('smessage', deliver);
    const connecting = subscriber.connect().then(
      () => subscriber,
      (error: unknown) => {
        subscriber.disconnect();
        if (this.subscriber === connecting) this.subscriber = undefined;
        throw error;
      },
    );
    this.subscriber = connecting;
    return connecting;
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
