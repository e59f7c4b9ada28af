import type { MemoryBus } from '../route/MemoryBus';
import { encodeValue } from './record';
import { queueEntry, type AttemptReply, type MutexKeys, type MutexStore, type QueueAs } from './MutexStore';

interface Waiter {
  arrival: number;
  aliveUntil: number;
  channel: string;
}

/** What the instances on one bus share beside its keys: the wait queues and who listens on which wake channel. */
interface SharedWaits {
  /** Queue key -> entry -> waiter, in arrival order (a Map keeps insertion order). */
  queues: Map<string, Map<string, Waiter>>;
  listeners: Map<string, (message: string) => void>;
}

const shared = new WeakMap<MemoryBus, SharedWaits>();

/**
 * {@link MutexStore} on the memory route's bus: for the instances of one
 * process, with the same records, expiry, fencing, queue and hand-over as on
 * Redis. Each step runs without an await inside, so it is atomic like its
 * Redis script; a hand-over notice is delivered on a later turn, as pub/sub
 * would.
 */
export class MemoryMutexStore implements MutexStore {
  private readonly waits: SharedWaits;
  private readonly listening = new Set<string>();

  constructor(private readonly bus: MemoryBus) {
    let waits = shared.get(bus);
    if (waits === undefined) {
      waits = { queues: new Map(), listeners: new Map() };
      shared.set(bus, waits);
    }
    this.waits = waits;
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.bus.setIfAbsent(key, Buffer.from(value), ttlMs);
  }

  async takeFenced(keys: MutexKeys, mutexId: string, token: string, takenAt: number, timeoutMs: number, nodeId: string, queue: QueueAs | null): Promise<AttemptReply> {
    const entry = queueEntry(token, timeoutMs, nodeId);
    const current = this.bus.get(keys.lock)?.toString();
    if (current !== undefined) {
      if (current.startsWith(`${token}|`)) return [2, current];
      if (queue) this.enqueue(keys.queue, entry, queue);
      return [0, this.bus.pttl(keys.lock)];
    }
    if (this.waits.queues.has(keys.queue)) {
      if (queue) this.enqueue(keys.queue, entry, queue);
      const handed = this.handOver(keys, mutexId, entry);
      if (handed === entry) return [2, (this.bus.get(keys.lock) as Buffer).toString()];
      if (handed !== undefined) return [0, this.bus.pttl(keys.lock)];
      this.dequeue(keys.queue, entry);
    }
    const fence = this.bus.incrBy(keys.fence, 1);
    this.bus.set(keys.lock, Buffer.from(encodeValue(token, fence, takenAt, timeoutMs, nodeId)), timeoutMs);
    return [1, fence];
  }

  async releaseIfHeld(keys: MutexKeys, mutexId: string, value: string): Promise<boolean> {
    if (this.bus.get(keys.lock)?.toString() !== value) return false;
    this.bus.del(keys.lock);
    this.handOver(keys, mutexId, undefined);
    return true;
  }

  async leave(keys: MutexKeys, mutexId: string, token: string, timeoutMs: number, nodeId: string): Promise<boolean> {
    this.dequeue(keys.queue, queueEntry(token, timeoutMs, nodeId));
    if (!this.bus.get(keys.lock)?.toString().startsWith(`${token}|`)) return false;
    this.bus.del(keys.lock);
    this.handOver(keys, mutexId, undefined);
    return true;
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

  async listen(channel: string, onMessage: (message: string) => void): Promise<void> {
    this.listening.add(channel);
    this.waits.listeners.set(channel, onMessage);
  }

  async unlisten(channel: string): Promise<void> {
    if (this.listening.delete(channel)) this.waits.listeners.delete(channel);
  }

  async close(): Promise<void> {
    for (const channel of this.listening) this.waits.listeners.delete(channel);
    this.listening.clear();
  }

  private enqueue(queueKey: string, entry: string, queue: QueueAs): void {
    let waiters = this.waits.queues.get(queueKey);
    if (waiters === undefined) {
      waiters = new Map();
      this.waits.queues.set(queueKey, waiters);
    }
    const aliveUntil = Date.now() + queue.aliveMs;
    const known = waiters.get(entry);
    if (known) known.aliveUntil = aliveUntil;
    else waiters.set(entry, { arrival: Date.now(), aliveUntil, channel: queue.channel });
  }

  private dequeue(queueKey: string, entry: string): void {
    const waiters = this.waits.queues.get(queueKey);
    if (waiters === undefined) return;
    waiters.delete(entry);
    if (waiters.size === 0) this.waits.queues.delete(queueKey);
  }

  /** The hand-over of the Redis scripts: the free lock goes to the first live waiter (`skip` is not notified). */
  private handOver(keys: MutexKeys, mutexId: string, skip: string | undefined): string | undefined {
    const waiters = this.waits.queues.get(keys.queue);
    if (waiters === undefined) return undefined;
    const now = Date.now();
    for (const [entry, waiter] of waiters) {
      this.dequeue(keys.queue, entry);
      const listener = this.waits.listeners.get(waiter.channel);
      if (waiter.aliveUntil < now || (entry !== skip && listener === undefined)) continue;
      const [token, timeout, ...node] = entry.split('|');
      const fence = this.bus.incrBy(keys.fence, 1);
      const value = encodeValue(token, fence, now, Number(timeout), node.join('|'));
      this.bus.set(keys.lock, Buffer.from(value), Number(timeout));
      if (entry !== skip && listener) setImmediate(listener, `${mutexId}|${value}`);
      return entry;
    }
    return undefined;
  }
}
