/** The keys of one mutex (all in the `{mutex:<id>}` hash slot). */
export interface MutexKeys {
  /** The lock: `<token>|<fence>|<takenAt>|<timeoutMs>|<nodeId>`, with the lease as its expiry. */
  lock: string;
  /** The fencing counter. */
  fence: string;
  /** The waiting acquirers by arrival (sorted set). */
  queue: string;
  /** Each waiting acquirer's liveness deadline and wake channel (hash). */
  waiters: string;
}

/**
 * What one attempt found: `[1, fence]` taken now; `[2, value]` handed over
 * to this attempt's token (now, or by a release since its last attempt);
 * `[0, remaining ms of the holder]` (-1 when unknown) otherwise.
 */
export type AttemptReply = [1, number] | [2, string] | [0, number];

/** How a waiting attempt queues: where it is told of a hand-over, and how long it stays live without a new attempt. */
export interface QueueAs {
  channel: string;
  aliveMs: number;
}

/**
 * Where mutexes live: Redis (SET NX PX and small Lua scripts) or the memory
 * route's bus (the same steps, each atomic because the process runs one at a
 * time). RedisMutex speaks only to this contract.
 */
export interface MutexStore {
  /** SET key value NX PX ttl: true when taken. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * One fenced attempt: takes a free lock nobody waits for, drawing the next
   * fencing token and storing `token|fence|takenAt|timeoutMs|nodeId`; hands a
   * free lock to the first live waiter; with `queue`, queues the caller (or
   * renews its place and liveness).
   */
  takeFenced(keys: MutexKeys, mutexId: string, token: string, takenAt: number, timeoutMs: number, nodeId: string, queue: QueueAs | null): Promise<AttemptReply>;
  /** Deletes the lock only if it still holds `value`, and hands it to the first live waiter: true when released. */
  releaseIfHeld(keys: MutexKeys, mutexId: string, value: string): Promise<boolean>;
  /** Takes a waiter out of the queue; a lock handed to it meanwhile is passed on. True when it had been handed the lock. */
  leave(keys: MutexKeys, mutexId: string, token: string, timeoutMs: number, nodeId: string): Promise<boolean>;
  /** Moves the lock's expiry only if it still holds `value` (never re-creates it): true when extended. */
  extendIfHeld(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** The lock's value and remaining ms, or null when free. */
  read(key: string): Promise<[string, number] | null>;
  /** Every lock key matching a glob pattern. */
  keys(pattern: string): Promise<string[]>;
  /** Receives the hand-over notices of `channel`; resolves once they are being received. */
  listen(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** Stops receiving the notices of `channel`. */
  unlisten(channel: string): Promise<void>;
  /** Stops receiving (and closes what `listen` opened). */
  close(): Promise<void>;
}

/** A waiter's queue entry: `<token>|<timeoutMs>|<nodeId>`. */
export function queueEntry(token: string, timeoutMs: number, nodeId: string): string {
  return `${token}|${timeoutMs}|${nodeId}`;
}
