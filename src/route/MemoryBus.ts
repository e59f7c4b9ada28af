/**
 * The shared medium of the memory route: what Redis is to the redis route.
 * One bus per process by default, so every client created with
 * `route: 'memory'` in one process sees the others; tests create their own.
 */
import { globToRegExp } from './glob';

/** One connected memory route, as the bus sees it. */
export interface MemoryEndpoint {
  hasChannel(channel: string): boolean;
  patternsMatching(channel: string): string[];
  deliver(channel: string, pattern: string | undefined, frame: Buffer): void;
}

interface StoredValue {
  value: Buffer;
  expiresAt: number;
}

export class MemoryBus {
  private readonly endpoints = new Set<MemoryEndpoint>();
  private readonly store = new Map<string, StoredValue>();
  private readonly registries = new Map<string, Map<string, StoredValue>>();
  private readonly patternCache = new Map<string, RegExp>();

  /** The bus shared by every memory route of this process that was not given one. */
  static readonly shared = new MemoryBus();

  attach(endpoint: MemoryEndpoint): void {
    this.endpoints.add(endpoint);
  }

  detach(endpoint: MemoryEndpoint): void {
    this.endpoints.delete(endpoint);
  }

  matches(pattern: string, channel: string): boolean {
    let regexp = this.patternCache.get(pattern);
    if (regexp === undefined) {
      regexp = globToRegExp(pattern);
      this.patternCache.set(pattern, regexp);
    }
    return regexp.test(channel);
  }

  /** Delivers asynchronously (as a network would), in order; returns the receiver count as Redis counts it. */
  publish(channel: string, frame: Buffer): number {
    let receivers = 0;
    for (const endpoint of this.endpoints) {
      if (endpoint.hasChannel(channel)) {
        receivers += 1;
        queueMicrotask(() => endpoint.deliver(channel, undefined, frame));
      }
      for (const pattern of endpoint.patternsMatching(channel)) {
        receivers += 1;
        queueMicrotask(() => endpoint.deliver(channel, pattern, frame));
      }
    }
    return receivers;
  }

  get(key: string): Buffer | null {
    const stored = this.store.get(key);
    if (stored === undefined) return null;
    if (stored.expiresAt <= Date.now()) {
      this.store.delete(key);
      return null;
    }
    return stored.value;
  }

  set(key: string, value: Buffer, ttlMs?: number): void {
    this.store.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs });
  }

  del(key: string): number {
    const existed = this.get(key) !== null;
    this.store.delete(key);
    return existed ? 1 : 0;
  }

  /** Same contract as INCRBY: refuses a value that is not an integer. */
  incrBy(key: string, by: number, ttlMs?: number): number {
    const current = this.get(key);
    const text = current === null ? '0' : current.toString();
    if (!/^-?\d+$/.test(text)) throw new Error('ERR value is not an integer or out of range');
    const next = Number(text) + by;
    const expiresAt = ttlMs !== undefined ? Date.now() + ttlMs : (this.store.get(key)?.expiresAt ?? Infinity);
    this.store.set(key, { value: Buffer.from(String(next)), expiresAt });
    return next;
  }

  announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number): void {
    let registry = this.registries.get(service);
    if (registry === undefined) {
      registry = new Map();
      this.registries.set(service, registry);
    }
    registry.set(instanceId, { value: announcement, expiresAt: Date.now() + ttlMs });
  }

  withdraw(service: string, instanceId: string): void {
    this.registries.get(service)?.delete(instanceId);
  }

  liveInstances(service: string): Buffer[] {
    const registry = this.registries.get(service);
    if (registry === undefined) return [];
    const now = Date.now();
    const live: Buffer[] = [];
    for (const [id, entry] of registry) {
      if (entry.expiresAt <= now) registry.delete(id);
      else live.push(entry.value);
    }
    return live;
  }
}
