import { EventEmitter } from 'node:events';
import type { MalformedMessageError } from '../errors/MalformedMessageError';
import { FrameBatcher } from './FrameBatcher';
import { MemoryBus, type MemoryEndpoint } from './MemoryBus';
import type { MessageListener, PatternListener, Route, RouteStats, RouteStatus, Unsubscribe } from './Route';
import { emptyStats, type RouteOptions } from './RouteOptions';
import { SubscriptionTable } from './SubscriptionTable';

/**
 * The in-process route: same API and behaviour as the redis route (proven by
 * the conformance suite), with a {@link MemoryBus} in place of Redis. Messages
 * are still framed and encoded, so size limits, ordering and what a payload
 * looks like on arrival are identical.
 */
export class MemoryRoute extends EventEmitter implements Route, MemoryEndpoint {
  readonly kind = 'memory' as const;
  private state: RouteStatus = 'idle';
  private readonly counters: RouteStats = emptyStats();
  private readonly batcher: FrameBatcher;
  private readonly table: SubscriptionTable;
  private readonly subscribedChannels = new Set<string>();
  private readonly subscribedPatterns = new Set<string>();

  constructor(
    private readonly options: RouteOptions,
    private readonly bus: MemoryBus = MemoryBus.shared,
  ) {
    super();
    this.batcher = new FrameBatcher(options.codec, options.limits, async (channel, frame) => this.bus.publish(channel, frame), this.counters);
    const backend = {
      subscribe: async (c: string) => void this.subscribedChannels.add(c),
      unsubscribe: async (c: string) => void this.subscribedChannels.delete(c),
      psubscribe: async (p: string) => void this.subscribedPatterns.add(p),
      punsubscribe: async (p: string) => void this.subscribedPatterns.delete(p),
    };
    const receiveLimit = () => options.limits.maxPayloadBytes + 1024;
    this.table = new SubscriptionTable(backend, options.codec, receiveLimit, this.counters, options.logger, (error) => this.reportMalformed(error));
  }

  get status(): RouteStatus {
    return this.state;
  }

  async connect(): Promise<void> {
    if (this.state === 'ready') return;
    this.bus.attach(this);
    this.state = 'ready';
    this.emit('ready');
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    this.batcher.flush();
    this.bus.detach(this);
    this.table.clear();
    this.subscribedChannels.clear();
    this.subscribedPatterns.clear();
    this.state = 'closed';
    this.emit('close');
  }

  publish(channel: string, message: unknown, group?: object): Promise<number> {
    return this.batcher.send(channel, message, group);
  }

  subscribe(channel: string, listener: MessageListener): Promise<Unsubscribe> {
    return this.table.addChannel(channel, listener);
  }

  psubscribe(pattern: string, listener: PatternListener): Promise<Unsubscribe> {
    return this.table.addPattern(pattern, listener);
  }

  async get(key: string): Promise<Buffer | null> {
    return this.bus.get(key);
  }

  async set(key: string, value: Buffer | string, ttlMs?: number): Promise<void> {
    this.bus.set(key, typeof value === 'string' ? Buffer.from(value) : Buffer.from(value), ttlMs);
  }

  async del(key: string): Promise<number> {
    return this.bus.del(key);
  }

  async incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    return this.bus.incrBy(key, by, ttlMs);
  }

  async announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number): Promise<void> {
    this.bus.announce(service, instanceId, announcement, ttlMs);
  }

  async withdraw(service: string, instanceId: string): Promise<void> {
    this.bus.withdraw(service, instanceId);
  }

  async liveInstances(service: string): Promise<Buffer[]> {
    return this.bus.liveInstances(service);
  }

  stats(): RouteStats {
    return { ...this.counters };
  }

  // ---- MemoryEndpoint ----

  hasChannel(channel: string): boolean {
    return this.subscribedChannels.has(channel);
  }

  patternsMatching(channel: string): string[] {
    if (this.subscribedPatterns.size === 0) return [];
    return [...this.subscribedPatterns].filter((pattern) => this.bus.matches(pattern, channel));
  }

  deliver(channel: string, pattern: string | undefined, frame: Buffer): void {
    if (this.state !== 'ready') return;
    this.table.deliver(channel, pattern, frame);
  }

  private reportMalformed(error: MalformedMessageError): void {
    // the owner (a RedisClient) logs what it is told; log here only when nobody listens
    if (this.listenerCount('malformed') > 0) this.emit('malformed', error);
    else this.options.logger.warn({ err: error }, 'malformed frame skipped');
  }
}
