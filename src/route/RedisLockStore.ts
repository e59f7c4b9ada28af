import type Redis from 'ioredis';
import type { LockStore } from './LockStore';
import { acquireScript, extendScript, inspectScript, releaseScript } from './lockScripts';
import { scanKeys } from './scanKeys';

/** {@link LockStore} on Redis: `SET NX PX` for `P`, Lua scripts for every compare-then-act step. */
export class RedisLockStore implements LockStore {
  constructor(private readonly redis: Redis) {}

  // The two of P/V are not async: each async layer costs the serial P+V cycle a promise and a turn of the microtask queue.
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.redis.set(key, value, 'PX', ttlMs, 'NX').then(isOk);
  }

  async takeFenced(lockKey: string, fenceKey: string, token: string, takenAt: number, timeoutMs: number, nodeId: string): Promise<[number, number]> {
    const [taken, reply] = await acquireScript.run(this.redis, [lockKey, fenceKey], [token, takenAt, timeoutMs, nodeId]);
    return [Number(taken), Number(reply)];
  }

  releaseIfHeld(key: string, value: string): Promise<boolean> {
    return releaseScript.run(this.redis, [key], [value], isOne);
  }

  async extendIfHeld(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await extendScript.run(this.redis, [key], [value, ttlMs])) === 1;
  }

  async read(key: string): Promise<[string, number] | null> {
    const reply = await inspectScript.run(this.redis, [key], []);
    return reply ? [String(reply[0]), Number(reply[1])] : null;
  }

  keys(pattern: string): Promise<string[]> {
    return scanKeys(this.redis, pattern);
  }
}

function isOk(reply: string | null): boolean {
  return reply === 'OK';
}

function isOne(reply: unknown): boolean {
  return reply === 1;
}
