/**
 * Where locks live, as part of the route contract (`route.locks`): on Redis
 * (SET NX PX and small Lua scripts) or on the memory route's bus (the same
 * steps, each atomic because the process runs one at a time). RedisMutex
 * speaks only to this contract.
 */
export interface LockStore {
  /** SET key value NX PX ttl: true when taken. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Takes a free lock and draws the next fencing token in one step, storing
   * `token|fence|takenAt|timeoutMs|nodeId`: `[1, fence]`, or `[0, remaining
   * ms of the holder]` when held.
   */
  takeFenced(lockKey: string, fenceKey: string, token: string, takenAt: number, timeoutMs: number, nodeId: string): Promise<[number, number]>;
  /** Deletes the lock only if it still holds `value`: true when released. */
  releaseIfHeld(key: string, value: string): Promise<boolean>;
  /** Moves the lock's expiry only if it still holds `value` (never re-creates it): true when extended. */
  extendIfHeld(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** The lock's value and remaining ms, or null when free. */
  read(key: string): Promise<[string, number] | null>;
  /** Every lock key matching a glob pattern. */
  keys(pattern: string): Promise<string[]>;
}
