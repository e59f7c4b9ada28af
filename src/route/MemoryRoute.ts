import { MalformedMessageError } from '../errors/MalformedMessageError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { incrementOutOfRange } from './incrementOutOfRange';
import { FramedRoute } from './FramedRoute';
import { MemoryBus, type MemoryBusOptions, type MemoryEndpoint } from './MemoryBus';
import type { HeldInstanceId, Route, RouteStatus } from './Route';
import type { RouteOptions } from './RouteOptions';
import type { AckOptions, ClaimState, ConsumeStep, ConsumeStepResult, DeadLetterStore, EntryQueries, RenewResult, StreamEntry, StreamInfo } from './StreamStore';

/** Options of the memory route beyond those every route takes. */
export interface MemoryRouteOptions {
  /**
   * The snapshot file of the route's bus (see {@link MemoryBusOptions.snapshotFile}):
   * durable queues are restored from it when the bus's first route connects
   * and written to it when the last one closes. Routes of one bus share one
   * file; `connect()` rejects with a ValidationError when another was named.
   * @default undefined (the bus's own setting; none unless given)
   */
  snapshotFile?: string;
}

/**
 * The in-process route: same API and behaviour as the redis route (proven by
 * the conformance suite), with a {@link MemoryBus} in place of Redis. Messages
 * are still framed and encoded, so size limits, ordering and what a payload
 * looks like on arrival are identical.
 */
export class MemoryRoute extends FramedRoute implements Route, MemoryEndpoint {
  readonly kind = 'memory' as const;
  readonly medium: { readonly kind: 'memory'; readonly bus: MemoryBus };
  private state: RouteStatus = 'idle';
  private readonly subscribedChannels = new Set<string>();
  private readonly subscribedPatterns = new Set<string>();

  constructor(
    options: RouteOptions,
    /** The bus this route talks through (what Redis is to the redis route). */
    readonly bus: MemoryBus = MemoryBus.shared,
    private readonly memoryOptions: MemoryRouteOptions = {},
  ) {
    super(options, async (channel, frame) => this.bus.publish(channel, frame), {
      subscribe: async (channels) => channels.forEach((c) => this.subscribedChannels.add(c)),
      unsubscribe: async (channels) => {
        channels.forEach((c) => this.subscribedChannels.delete(c));
        await this.bus.delivered();
      },
      psubscribe: async (patterns) => patterns.forEach((p) => this.subscribedPatterns.add(p)),
      punsubscribe: async (patterns) => {
        patterns.forEach((p) => this.subscribedPatterns.delete(p));
        await this.bus.delivered();
      },
    });
    this.medium = { kind: 'memory', bus };
  }

  get status(): RouteStatus {
    return this.state;
  }

  /** Attaches to the bus; the bus's first route restores its snapshot (rejecting with a SnapshotError when the file is unreadable). */
  async connect(): Promise<void> {
    if (this.state === 'ready') return;
    if (this.memoryOptions.snapshotFile !== undefined) this.bus.useSnapshotFile(this.memoryOptions.snapshotFile);
    this.state = 'connecting';
    try {
      await this.bus.attach(this);
    } catch (error) {
      this.state = 'idle';
      throw error;
    }
    this.state = 'ready';
    this.emit('ready');
  }

  /** Ends this route's blocked reads (with no entries); the bus's last route writes its snapshot (rejecting with a SnapshotError when it cannot, once closed). */
  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.flushWrites();
    this.bus.streams.cancel(this);
    this.table.clear();
    this.subscribedChannels.clear();
    this.subscribedPatterns.clear();
    try {
      await this.bus.detach(this);
    } finally {
      this.state = 'closed';
      this.warnings.flush();
      this.emit('close');
    }
  }

  async channelSubscribers(channels: string[]): Promise<number[]> {
    return channels.map((channel) => this.bus.channelSubscribers(channel));
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
    // as the Redis route's script: the check and the write in one synchronous step, so atomic
    const current = this.bus.get(key)?.toString() ?? '0';
    if (!/^-?\d+$/.test(current)) throw new MalformedMessageError(key, `the stored value is not an integer that can be incremented (${JSON.stringify(current.slice(0, 40))})`);
    const reached = BigInt(current) + BigInt(by);
    if (reached > BigInt(Number.MAX_SAFE_INTEGER) || reached < BigInt(Number.MIN_SAFE_INTEGER)) throw incrementOutOfRange(key, by, String(reached));
    return this.bus.incrBy(key, by, ttlMs);
  }

  async keys(pattern: string): Promise<string[]> {
    // streams are keys too, as on Redis
    return [...this.bus.keys(pattern), ...this.bus.streams.names().filter((name) => this.bus.matches(pattern, name))];
  }

  async announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number, exclusive = false): Promise<HeldInstanceId | void> {
    // as on Redis: a closed route keeps no instance live (a heartbeat left running would hold its id for ever)
    if (this.state === 'closing' || this.state === 'closed') throw new NotConnectedError('announce', this.state);
    return this.bus.announce(service, instanceId, announcement, ttlMs, exclusive);
  }

  async withdraw(service: string, instanceId: string): Promise<void> {
    this.bus.withdraw(service, instanceId);
  }

  async liveInstances(service: string): Promise<Buffer[]> {
    return this.bus.liveInstances(service);
  }

  // ---- durable queues (delegated to the bus's MemoryStreams; async so that errors reject, as on Redis) ----

  async streamAdd(stream: string, payload: Buffer): Promise<string> {
    return this.bus.streams.add(stream, payload);
  }

  async streamEnsureGroup(stream: string, group: string, from: '0' | '$'): Promise<boolean> {
    return this.bus.streams.ensureGroup(stream, group, from);
  }

  async streamDestroyGroup(stream: string, group: string): Promise<void> {
    this.bus.streams.destroyGroup(stream, group);
  }

  async streamRead(stream: string, group: string, consumer: string, which: '>' | 'own-pending', count: number, blockMs: number): Promise<StreamEntry[]> {
    if (which === 'own-pending') return this.bus.streams.claim(stream, group, consumer, 0, count, consumer);
    // a closed route would otherwise block forever (nothing cancels it again), where Redis fails at once
    if (this.state === 'closing' || this.state === 'closed') throw new NotConnectedError('read a stream', this.state);
    return this.bus.streams.read(this, stream, group, consumer, count, blockMs);
  }

  async streamClaimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    return this.bus.streams.claim(stream, group, consumer, minIdleMs, count);
  }

  async streamAck(stream: string, group: string, ids: string[], options: AckOptions): Promise<void> {
    this.ack(stream, group, ids, options);
  }

  private ack(stream: string, group: string, ids: string[], options: AckOptions): void {
    for (const id of ids) this.bus.streams.ack(stream, group, id, options.delete);
    const done = options.done;
    if (done !== undefined) for (const id of done.ids) this.bus.recordDone(doneField(done.key, id), done.ttlMs);
    const release = options.releaseClaims;
    if (release !== undefined) for (const queryId of release.queryIds) this.bus.del(doneField(release.key, queryId));
  }

  async streamDeadLetter(stream: string, group: string, id: string | null, dead: DeadLetterStore, payload: Buffer, remove: boolean): Promise<string> {
    const { deadId, dropped } = this.bus.streams.deadLetter(stream, group, id, dead.stream, dead.maxLength, payload, remove);
    if (dropped > 0) this.bus.incrBy(dead.droppedKey, dropped);
    return deadId;
  }

  async streamRange(stream: string, start: string, end: string, count: number): Promise<Array<{ id: string; payload: Buffer }>> {
    return this.bus.streams.range(stream, start, end, count);
  }

  async streamDelete(stream: string, ids: string[]): Promise<number> {
    return this.bus.streams.delete(stream, ids);
  }

  async streamTrimBelow(stream: string, minId: string): Promise<number> {
    return this.bus.streams.trimBelow(stream, minId);
  }

  async streamInfo(stream: string): Promise<StreamInfo> {
    return this.bus.streams.info(stream);
  }

  // one synchronous step each, as the Lua scripts of the redis route are; a claim is a key per query with a TTL where Redis keeps a hash field
  async claimQueries(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): Promise<ClaimState[]> {
    return this.claim(doneKeys, claimsKey, holder, ttlMs, entries);
  }

  async consumeStep(step: ConsumeStep): Promise<ConsumeStepResult> {
    const [current, previous] = step.doneKeys;
    this.ack(step.stream, step.group, step.ack, { delete: false, done: { key: current, ids: step.completed, ttlMs: step.doneTtlMs }, releaseClaims: { key: step.claimsKey, queryIds: step.completed } });
    const states = this.claim([current, previous], step.claimsKey, step.consumer, step.claimTtlMs, step.claim);
    const entries = step.read > 0 ? this.bus.streams.readNow(step.stream, step.group, step.consumer, step.read) : [];
    return { states, entries: entries ?? [], groupGone: entries === undefined };
  }

  private claim(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): ClaimState[] {
    const seen = new Set<string>();
    const states: ClaimState[] = [];
    for (const { entryId, queryIds } of entries) {
      for (const queryId of queryIds) {
        const key = doneField(claimsKey, queryId);
        let state: ClaimState = 'claimed';
        if (doneKeys.some((done) => this.bus.get(doneField(done, queryId)) !== null)) state = 'done';
        else if (seen.has(queryId)) state = 'held-elsewhere';
        else {
          const claim = parseClaim(this.bus.get(key));
          if (claim !== undefined) state = claim.entryId !== entryId ? 'held-elsewhere' : claim.holder !== holder ? 'held-here' : 'claimed';
        }
        if (state === 'claimed') this.bus.set(key, Buffer.from(`${entryId} ${holder}`), ttlMs);
        seen.add(queryId);
        states.push(state);
      }
    }
    return states;
  }

  async renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimsKey: string, queryIds: string[], ttlMs: number): Promise<RenewResult> {
    const claimedFrom = new Set<string>();
    const claims = queryIds.map((queryId) => {
      const key = doneField(claimsKey, queryId);
      const value = this.bus.get(key);
      const claim = parseClaim(value);
      if (claim?.holder !== holder) return false;
      claimedFrom.add(claim.entryId);
      this.bus.set(key, value as Buffer, ttlMs);
      return true;
    });
    const entries = this.bus.streams.touch(stream, group, holder, entryIds, claimedFrom);
    return { entries: entries ?? entryIds.map((id) => claimedFrom.has(id)), claims, groupGone: entries === undefined };
  }

  async releaseClaims(claimsKey: string, queryIds: string[], holder: string): Promise<void> {
    for (const queryId of queryIds) {
      const key = doneField(claimsKey, queryId);
      if (parseClaim(this.bus.get(key))?.holder === holder) this.bus.del(key);
    }
  }

  async maintenanceLease(seenKey: string, seenTtlMs: number, leaseKey: string, holder: string, leaseMs: number): Promise<boolean> {
    this.bus.set(seenKey, Buffer.from('1'), seenTtlMs);
    const current = this.bus.get(leaseKey);
    if (current !== null && current.toString() !== holder) return false;
    this.bus.set(leaseKey, Buffer.from(holder), leaseMs);
    return true;
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
}

/** A claim key's value: `<entry id> <holder>`. */
function parseClaim(value: Buffer | null): { entryId: string; holder: string } | undefined {
  if (value === null) return undefined;
  const text = value.toString();
  const space = text.indexOf(' ');
  return { entryId: text.slice(0, space), holder: text.slice(space + 1) };
}

/** The memory bus keeps one key per recorded id (or claim) where Redis keeps a hash field. */
function doneField(key: string, id: string): string {
  return `${key}\u0000${id}`;
}
