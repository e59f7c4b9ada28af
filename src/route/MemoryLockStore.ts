import type { LockStore } from './LockStore';
import type { MemoryBus } from './MemoryBus';

/**
 * {@link LockStore} on the memory route's bus: for the instances of one
 * process, with the same records, expiry and fencing as on Redis. Each step
 * runs without an await inside, so it is atomic like its Redis script.
 */
export class MemoryLockStore implements LockStore {
  constructor(private readonly bus: MemoryBus) {}

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.bus.setIfAbsent(key, Buffer.from(value), ttlMs);
  }

  async takeFenced(lockKey: string, fenceKey: string, token: string, takenAt: number, timeoutMs: number, nodeId: string): Promise<[number, number]> {
    if (this.bus.get(lockKey) !== null) return [0, this.bus.pttl(lockKey)];
    const fence = this.bus.incrBy(fenceKey, 1);
    // the value the acquire script of lockScripts.ts stores (RedisMutex reads it back with decodeValue)
    this.bus.set(lockKey, Buffer.from(`${token}|${fence}|${takenAt}|${timeoutMs}|${nodeId}`), timeoutMs);
    return [1, fence];
  }

  async releaseIfHeld(key: string, value: string): Promise<boolean> {
    if (this.bus.get(key)?.toString() !== value) return false;
    return this.bus.del(key) === 1;
  }

  async extendIfHeld(key: string, value: string, ttlMs: number): Promise<boolean> {
    const current = this.bus.get(key);
    if (current?.toString() !== value) return false;
    this.bus.set(key, current, ttlMs);
    return true;
  }

  async read(key: string): Promise<[string, number] | null> {
    const value = this.bus.get(key);
    return value === null ? null : [value.toString(), this.bus.pttl(key)];
  }

  async keys(pattern: string): Promise<string[]> {
    return this.bus.keys(pattern);
  }
}
