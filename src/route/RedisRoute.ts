import { once } from 'node:events';
import Redis, { type RedisOptions } from 'ioredis';
import { ConnectionError } from '../errors/ConnectionError';
import { FramedRoute } from './FramedRoute';
import { withSocketErrorGuard } from './socketErrorGuard';
import { RedisStreamStore } from './RedisStreamStore';
import type { AckOptions, ClaimState, DeadLetterStore, EntryQueries, RenewResult, StreamEntry, StreamInfo } from './StreamStore';
import { announceScript, liveInstancesScript, withdrawScript } from './registryScripts';
import type { Route, RouteStatus } from './Route';
import { DEFAULT_CONNECT_TIMEOUT_MS, type RouteOptions } from './RouteOptions';
import { MAX_NAMES_PER_CALL } from './SubscriptionTable';
import { withinMs } from './withinMs';
import { scanKeys } from './scanKeys';

/**
 * How to reach Redis: a URL (`redis://`, `rediss://` for TLS), ioredis
 * options (AUTH, ACL user, TLS and Sentinel pass through), or an existing
 * ioredis instance (used for commands and duplicated for subscriptions; the
 * caller keeps ownership and closes it).
 */
export type RedisConnection = string | RedisOptions | Redis;

/**
 * The Redis route: one publisher/command connection and one subscriber
 * connection (a connection in subscriber mode can run nothing else).
 * After a reconnect the route subscribes again itself (ioredis's
 * autoResubscribe is off), one subscription per channel whatever the number
 * of listeners, so no message is delivered twice, and reports `ready` only
 * once every subscription is back.
 */
export class RedisRoute extends FramedRoute implements Route {
  readonly kind = 'redis' as const;
  /** Command and publish connection. */
  readonly publisher: Redis;
  /** Subscriber connection. */
  readonly subscriber: Redis;
  private readonly ownsPublisher: boolean;
  private state: RouteStatus = 'idle';
  private readonly streams: RedisStreamStore;
  readonly medium: { readonly kind: 'redis'; readonly connection: Redis };
  /** The listeners this route put on each connection, removed on close (a caller-owned connection outlives the route). */
  private readonly detachers: Array<() => void> = [];
  /** Rejects the connect() in progress (close() was called meanwhile). */
  private abortConnect: ((reason: Error) => void) | undefined;

  constructor(connection: RedisConnection, options: RouteOptions) {
    super(options, (channel, frame) => this.publisher.publish(channel, frame), {
      subscribe: async (channels) => void (await this.subscriber.subscribe(...channels)),
      unsubscribe: async (channels) => void (await this.subscriber.unsubscribe(...channels)),
      psubscribe: async (patterns) => void (await this.subscriber.psubscribe(...patterns)),
      punsubscribe: async (patterns) => void (await this.subscriber.punsubscribe(...patterns)),
    });
    if (connection instanceof Redis) {
      this.publisher = connection;
      this.ownsPublisher = false;
    } else {
      this.publisher =
        typeof connection === 'string' ? new Redis(connection, withSocketErrorGuard({ lazyConnect: true })) : new Redis(withSocketErrorGuard({ ...connection, lazyConnect: true }));
      this.ownsPublisher = true;
    }
    // We replay subscriptions ourselves, so that `ready` after a reconnect means "subscribed again".
    this.subscriber = this.publisher.duplicate({ lazyConnect: true, autoResubscribe: false, Connector: withSocketErrorGuard(this.publisher.options).Connector });
    this.streams = new RedisStreamStore(this.publisher);
    this.medium = { kind: 'redis', connection: this.publisher };
    this.watchConnection(this.publisher, 'publisher');
    this.watchConnection(this.subscriber, 'subscriber');

    this.subscriber.on('messageBuffer', (channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), undefined, frame));
    this.subscriber.on('pmessageBuffer', (pattern: string, channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), pattern, frame));
  }

  /** What `connect()` may take before it gives up, in ms (a server that accepts and never answers). */
  private get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  get status(): RouteStatus {
    return this.state;
  }

  /** Where Redis is (`host:port` or a socket path), for messages. */
  get target(): string {
    return describeTarget(this.publisher);
  }

  async connect(): Promise<void> {
    if (this.state === 'ready') return;
    if (this.state === 'closing' || this.state === 'closed') throw new ConnectionError(describeTarget(this.publisher), 'the route is closed');
    this.state = 'connecting';
    this.options.logger.debug({ target: describeTarget(this.publisher) }, 'connecting to redis');
    let lastError: Error | undefined;
    const remember = (error: Error) => (lastError = error);
    this.publisher.on('error', remember);
    this.subscriber.on('error', remember);
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.connectTimeoutMs;
    try {
      await Promise.race([
        Promise.all([connectIfNeeded(this.publisher), connectIfNeeded(this.subscriber)]),
        new Promise<never>((_, reject) => {
          // ioredis's own connectTimeout covers the TCP handshake only: a server that accepts and never answers would hang here
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (connectTimeoutMs)`)), timeoutMs);
          this.abortConnect = reject;
        }),
      ]);
    } catch (error) {
      // leave nothing retrying in the background: the caller decides whether to try again
      // a retry may start at once: it needs connections that have ended, not ones still closing
      await Promise.all([disconnectFully(this.subscriber), this.ownsPublisher ? disconnectFully(this.publisher) : undefined]);
      if ((this.state as RouteStatus) !== 'closing' && (this.state as RouteStatus) !== 'closed') this.state = 'idle';
      const ours = error instanceof Error && /connectTimeoutMs|closed while/.test(error.message);
      const cause = ours ? error : (lastError ?? error);
      throw new ConnectionError(describeTarget(this.publisher), cause instanceof Error ? cause.message : String(cause), { cause });
    } finally {
      clearTimeout(timer);
      this.abortConnect = undefined;
      this.publisher.off('error', remember);
      this.subscriber.off('error', remember);
    }
    this.state = 'ready';
    this.options.logger.debug({ target: describeTarget(this.publisher) }, 'connected to redis');
    this.emit('ready');
  }

  /**
   * Sends what is queued and closes the connections this route created,
   * within `timeoutMs`: when Redis is unreachable (or does not answer in
   * time) the connections are cut instead, the commands still queued are
   * rejected, and how many were abandoned is logged.
   */
  async close(timeoutMs = Infinity): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const wasConnecting = this.state === 'connecting';
    this.state = 'closing';
    this.abortConnect?.(new Error('closed while connecting'));
    this.flushWrites();
    this.table.clear();
    this.streams.close();
    const reachable = !wasConnecting && this.subscriber.status === 'ready' && (!this.ownsPublisher || this.publisher.status === 'ready');
    if (reachable) {
      // QUIT goes after what is queued, so a reachable Redis gets every frame already sent
      const quitting = Promise.all([quietly(this.subscriber.quit()), this.ownsPublisher ? quietly(this.publisher.quit()) : undefined]);
      await withinMs(quitting, timeoutMs);
    }
    const abandoned = queuedCommands(this.subscriber) + (this.ownsPublisher ? queuedCommands(this.publisher) : 0);
    if (abandoned > 0) {
      this.options.logger.warn({ abandonedCommands: abandoned, closeTimeoutMs: timeoutMs, reachable }, 'closed with commands Redis never answered; they are rejected');
    }
    this.subscriber.disconnect();
    if (this.ownsPublisher) this.publisher.disconnect();
    for (const detach of this.detachers.splice(0)) detach();
    this.state = 'closed';
    this.warnings.flush();
    this.emit('close');
  }

  async channelSubscribers(channels: string[]): Promise<number[]> {
    if (channels.length === 0) return [];
    // RESP2 and RESP3 both answer a flat channel, count, channel, count... list
    const reply = (await this.publisher.call('PUBSUB', 'NUMSUB', ...channels)) as unknown[] | Record<string, unknown>;
    const counts = new Map<string, number>();
    if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) counts.set(String(reply[i]), Number(reply[i + 1]));
    else for (const [channel, count] of Object.entries(reply)) counts.set(channel, Number(count));
    return channels.map((channel) => counts.get(channel) ?? 0);
  }

  get(key: string): Promise<Buffer | null> {
    return this.publisher.getBuffer(key);
  }

  async set(key: string, value: Buffer | string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.publisher.set(key, value);
    else await this.publisher.set(key, value, 'PX', ttlMs);
  }

  del(key: string): Promise<number> {
    return this.publisher.del(key);
  }

  async incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    if (ttlMs === undefined) return this.publisher.incrby(key, by);
    const replies = await this.publisher.multi().incrby(key, by).pexpire(key, ttlMs).exec();
    const [error, value] = replies?.[0] ?? [new Error('transaction aborted'), null];
    if (error) throw error;
    return Number(value);
  }

  keys(pattern: string): Promise<string[]> {
    return scanKeys(this.publisher, pattern);
  }

  async announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number): Promise<void> {
    const { names } = this.options;
    await announceScript.run(this.publisher, [names.instanceSet(service), names.instanceAnnouncements(service)], [instanceId, announcement, ttlMs]);
  }

  async withdraw(service: string, instanceId: string): Promise<void> {
    const { names } = this.options;
    await withdrawScript.run(this.publisher, [names.instanceSet(service), names.instanceAnnouncements(service)], [instanceId]);
  }

  liveInstances(service: string): Promise<Buffer[]> {
    const { names } = this.options;
    return liveInstancesScript.runBuffer(this.publisher, [names.instanceSet(service), names.instanceAnnouncements(service)], []);
  }

  // ---- durable queues (delegated to RedisStreamStore) ----

  streamAdd(stream: string, payload: Buffer): Promise<string> {
    return this.streams.streamAdd(stream, payload);
  }

  streamEnsureGroup(stream: string, group: string, from: '0' | '$'): Promise<boolean> {
    return this.streams.streamEnsureGroup(stream, group, from);
  }

  streamDestroyGroup(stream: string, group: string): Promise<void> {
    return this.streams.streamDestroyGroup(stream, group);
  }

  streamRead(stream: string, group: string, consumer: string, which: '>' | 'own-pending', count: number, blockMs: number): Promise<StreamEntry[]> {
    return this.streams.streamRead(stream, group, consumer, which, count, blockMs);
  }

  streamClaimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    return this.streams.streamClaimIdle(stream, group, consumer, minIdleMs, count);
  }

  streamAck(stream: string, group: string, ids: string[], options: AckOptions): Promise<void> {
    return this.streams.streamAck(stream, group, ids, options);
  }

  streamDeadLetter(stream: string, group: string, id: string | null, dead: DeadLetterStore, payload: Buffer, remove: boolean): Promise<string> {
    return this.streams.streamDeadLetter(stream, group, id, dead, payload, remove);
  }

  streamRange(stream: string, start: string, end: string, count: number): Promise<Array<{ id: string; payload: Buffer }>> {
    return this.streams.streamRange(stream, start, end, count);
  }

  streamDelete(stream: string, ids: string[]): Promise<number> {
    return this.streams.streamDelete(stream, ids);
  }

  streamTrimBelow(stream: string, minId: string): Promise<number> {
    return this.streams.streamTrimBelow(stream, minId);
  }

  streamInfo(stream: string): Promise<StreamInfo> {
    return this.streams.streamInfo(stream);
  }

  claimQueries(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): Promise<ClaimState[]> {
    return this.streams.claimQueries(doneKeys, claimsKey, holder, ttlMs, entries);
  }

  renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimsKey: string, queryIds: string[], ttlMs: number): Promise<RenewResult> {
    return this.streams.renewClaims(stream, group, holder, entryIds, claimsKey, queryIds, ttlMs);
  }

  releaseClaims(claimsKey: string, queryIds: string[], holder: string): Promise<void> {
    return this.streams.releaseClaims(claimsKey, queryIds, holder);
  }

  private watchConnection(connection: Redis, role: string): void {
    const logger = this.options.logger;
    const listeners: Record<string, (...args: any[]) => void> = {
      error: (error: Error) => {
        // an outage repeats this on every reconnect attempt
        this.warnings.warn(`connection ${role}`, { err: error, role }, 'redis connection error');
        if (this.listenerCount('error') > 0) this.emit('error', error);
      },
      reconnecting: (delayMs: number) => {
        // only a connection that was ready reconnects; a first connect that fails is connect()'s to report
        if (this.state !== 'ready' && this.state !== 'reconnecting') return;
        logger.info({ role, delayMs }, 'reconnecting to redis');
        this.state = 'reconnecting';
        this.emit('reconnecting', { role, delayMs });
      },
      close: () => {
        if (this.state === 'ready') this.emit('connectionLost', { role });
      },
      ready: () => {
        if (this.state !== 'reconnecting') return;
        this.recover().catch((error: unknown) => this.warnings.warn('recover', { err: error }, 'could not restore subscriptions; will retry on the next reconnect'));
      },
    };
    for (const [event, listener] of Object.entries(listeners)) {
      connection.on(event, listener);
      this.detachers.push(() => connection.off(event, listener));
    }
  }

  /** After a reconnect: subscribe again to every channel and pattern, then report ready. */
  private async recover(): Promise<void> {
    if (this.publisher.status !== 'ready' || this.subscriber.status !== 'ready') return;
    const { channels, patterns } = this.table.active();
    for (let i = 0; i < channels.length; i += MAX_NAMES_PER_CALL) await this.subscriber.subscribe(...channels.slice(i, i + MAX_NAMES_PER_CALL));
    for (let i = 0; i < patterns.length; i += MAX_NAMES_PER_CALL) await this.subscriber.psubscribe(...patterns.slice(i, i + MAX_NAMES_PER_CALL));
    if (this.state !== 'reconnecting') return;
    this.state = 'ready';
    this.options.logger.info({ channels: channels.length, patterns: patterns.length }, 'reconnected to redis, subscriptions restored');
    this.emit('ready');
  }
}

/**
 * True when the connection is not trying to connect: never started, ended,
 * or left `reconnecting` by a disconnect() that cleared its retry timer
 * (ioredis then stays in that state with nothing scheduled).
 */
function stopped(connection: Redis): boolean {
  const status = connection.status;
  if (status === 'wait' || status === 'end') return true;
  return status === 'reconnecting' && (connection as unknown as { reconnectTimeout?: unknown }).reconnectTimeout == null;
}

async function connectIfNeeded(connection: Redis): Promise<void> {
  if (connection.status === 'ready') return;
  if (stopped(connection)) {
    // a disconnect() that met a `reconnecting` connection leaves ioredis's manual-close flag set, and with it
    // set the next dropped connection would end instead of reconnecting: this connect is not a manual close
    if (connection.status === 'reconnecting') (connection as unknown as { manuallyClosing: boolean }).manuallyClosing = false;
    await connection.connect();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      connection.off('end', onEnd);
      resolve();
    };
    const onEnd = () => {
      connection.off('ready', onReady);
      reject(new Error('connection ended before it was ready'));
    };
    connection.once('ready', onReady);
    connection.once('end', onEnd);
  });
}

function describeTarget(connection: Redis): string {
  const { host, port, path } = connection.options;
  return path ? String(path) : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

/**
 * Disconnects and resolves once the connection has ended (at most after about
 * a second). A disconnect() that lands while ioredis is still opening the
 * socket is not always final (the connection goes on to reconnect), so it is
 * repeated until the connection ends.
 */
async function disconnectFully(connection: Redis): Promise<void> {
  for (let attempt = 0; attempt < 5 && !stopped(connection); attempt++) {
    const ended = once(connection, 'end');
    connection.disconnect();
    if (await withinMs(ended, 200)) return;
  }
}

/** Commands sent or queued on a connection and not yet answered. */
function queuedCommands(connection: Redis): number {
  const internals = connection as unknown as { commandQueue?: { length: number }; offlineQueue?: { length: number } };
  return (internals.commandQueue?.length ?? 0) + (internals.offlineQueue?.length ?? 0);
}

async function quietly(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch {
    // closing: a connection that is already gone is what we want
  }
}
