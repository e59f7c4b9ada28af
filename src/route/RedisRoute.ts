import { performance } from 'node:perf_hooks';
import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import { ConnectionError } from '../errors/ConnectionError';
import { IntracomError } from '../errors/IntracomError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { redactCredentials } from '../log/redact';
import { assertLentConnectionOpen, assertDataServer, clusterSubscriber, connectIfNeeded, cut, notAClusterError, openConnection, reviveWhenEnded, type OpenedConnection, type RedisCommands, type RedisConnection, type Topology } from './connection';
import { FramedRoute } from './FramedRoute';
import { LuaScript } from './LuaScript';
import { watchTopologyRefusal } from './topologyRefusals';
import { withSocketErrorGuard } from './socketErrorGuard';
import { RedisStreamStore } from './RedisStreamStore';
import type { AckOptions, ClaimState, ConsumeStep, ConsumeStepResult, DeadLetterStore, EntryQueries, RenewResult, StreamEntry, StreamInfo } from './StreamStore';
import { announceScript, liveInstancesScript, withdrawScript } from './registryScripts';
import { incrementOutOfRange } from './incrementOutOfRange';
import { incrementScript } from './variableScripts';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import type { HeldInstanceId, Route, RouteStatus } from './Route';
import { DEFAULT_CONNECT_TIMEOUT_MS, type RouteOptions } from './RouteOptions';
import { MAX_NAMES_PER_CALL } from './SubscriptionTable';
import { withinMs } from './withinMs';
import { redisFailure } from './redisFailure';
import { scanKeys } from './scanKeys';

export type { RedisConnection } from './connection';

/** The subscribers of a shard channel, on the master of its slot (the channel is the routing key). */
const shardSubscribersScript = new LuaScript<[string, number]>(
  'shardSubscribers',
  1,
  `-- KEYS[1] the shard channel, as a routing key only; ARGV[1] the channel
-- returns { channel, subscribers }
return redis.call('PUBSUB', 'SHARDNUMSUB', ARGV[1])`,
);

/** PUBSUB NUMSUB on one connection: RESP2 and RESP3 both answer a flat channel, count, ... list. */
async function numsub(connection: Redis, channels: string[]): Promise<number[]> {
  const reply = (await connection.call('PUBSUB', 'NUMSUB', ...channels)) as unknown[] | Record<string, unknown>;
  const counts = new Map<string, number>();
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) counts.set(String(reply[i]), Number(reply[i + 1]));
  else for (const [channel, count] of Object.entries(reply)) counts.set(channel, Number(count));
  return channels.map((channel) => counts.get(channel) ?? 0);
}

/**
 * Pauses between the counts of a shard channel found without subscribers
 * (ms; 700 ms in all, see channelSubscribers): the subscription of a slot
 * that has just moved reaches the new master in tens of ms on an idle
 * machine, and took more than 300 ms at load average 20-30. A crashed
 * instance's channel is believed empty that much later.
 */
const SLOT_MOVE_RECOUNTS_MS = [100, 200, 400];

/**
 * Classic PUBLISH on a cluster, sent to the node of the channel's slot (the
 * channel is passed as the key only to route the call), so that one channel's
 * frames always leave from one node, in order. The cluster bus then copies
 * the message to every node.
 */
const classicPublishScript = new LuaScript<number>(
  'classicPublish',
  1,
  `-- KEYS[1] the channel, as a routing key only (never read or written)
-- ARGV[1] channel, ARGV[2] frame; returns the receivers on this node
return redis.call('PUBLISH', ARGV[1], ARGV[2])`,
);

/**
 * The Redis route: one publisher/command connection and one subscriber
 * connection (a connection in subscriber mode can run nothing else), on one
 * server, a Sentinel-managed master or a Redis Cluster.
 *
 * On a cluster, a channel with a hash tag (`service.{calc}.rpc.<id>`, which
 * is what {@link Names} builds for per-service and per-instance channels in
 * sharded mode) goes through sharded pub/sub (SPUBLISH/SSUBSCRIBE): a message
 * touches the one shard that owns the tag's slot. Other channels, and every
 * pattern, use classic pub/sub, which the cluster bus copies to every node.
 *
 * Subscriptions are replayed after every reconnect, one per channel whatever
 * the number of listeners, so no message is delivered twice: by this route
 * on one server and on Sentinel (so that `ready` means "subscribed again on
 * the current master"), by ioredis on a cluster (it follows slot moves and
 * failovers per shard).
 */
export class RedisRoute extends FramedRoute implements Route {
  readonly kind = 'redis' as const;
  /** Command and publish connection. */
  readonly publisher: RedisCommands;
  /** Subscriber connection (on a cluster: a Cluster with sharded subscribers). */
  readonly subscriber: RedisCommands;
  /** One server, Sentinel or cluster. */
  readonly topology: Topology;
  private readonly ownsPublisher: boolean;
  private readonly opened: OpenedConnection;
  private state: RouteStatus = 'idle';
  private readonly streams: RedisStreamStore;
  readonly medium: { readonly kind: 'redis'; readonly connection: RedisCommands };
  /** The listeners this route put on each connection, removed on close (a caller-owned connection outlives the route). */
  private readonly detachers: Array<() => void> = [];
  /** Rejects the connect() in progress (close() was called meanwhile). */
  private abortConnect: ((reason: Error) => void) | undefined;

  constructor(connection: RedisConnection, options: RouteOptions) {
    super(options, (channel, frame) => this.write(channel, frame), {
      subscribe: (channels) => this.typed(`subscribe to ${listed(channels)}`, this.split(channels, (plain) => this.subscriber.subscribe(...plain), (shard) => this.subscriber.ssubscribe(shard))),
      unsubscribe: (channels) => this.typed(`unsubscribe from ${listed(channels)}`, this.split(channels, (plain) => this.subscriber.unsubscribe(...plain), (shard) => this.subscriber.sunsubscribe(shard))),
      psubscribe: (patterns) => this.typed(`psubscribe to ${listed(patterns)}`, this.subscriber.psubscribe(...patterns).then(() => undefined)),
      punsubscribe: (patterns) => this.typed(`punsubscribe from ${listed(patterns)}`, this.subscriber.punsubscribe(...patterns).then(() => undefined)),
    });
    this.opened = openConnection(connection);
    this.publisher = this.opened.commands;
    this.ownsPublisher = this.opened.owned;
    this.topology = this.opened.topology;
    if (this.topology === 'cluster') {
      // ioredis replays classic and sharded subscriptions per node and per shard after moves and failovers
      this.subscriber = clusterSubscriber(this.publisher as Cluster);
      this.subscriber.on('smessageBuffer', (channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), undefined, frame));
    } else {
      // We replay subscriptions ourselves, so that `ready` after a reconnect means "subscribed again".
      const publisher = this.publisher as Redis;
      this.subscriber = publisher.duplicate({ lazyConnect: true, autoResubscribe: false, Connector: withSocketErrorGuard(publisher.options).Connector });
    }
    this.streams = new RedisStreamStore(this.publisher, options.durability);
    this.medium = { kind: 'redis', connection: this.publisher };
    this.watchConnection(this.publisher, 'publisher');
    this.watchConnection(this.subscriber, 'subscriber');
    // a connection ioredis ended on its own (not closed by us) would leave the route reconnecting for ever
    const connected = () => this.state === 'ready' || this.state === 'reconnecting';
    if (this.ownsPublisher) this.detachers.push(reviveWhenEnded(this.publisher, connected));
    this.detachers.push(reviveWhenEnded(this.subscriber, connected));

    this.subscriber.on('messageBuffer', (channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), undefined, frame));
    this.subscriber.on('pmessageBuffer', (pattern: string, channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), pattern, frame));
  }

  /**
   * The frames of one flush (a burst split in pieces, or several channels)
   * leave in one writev: the publisher's socket is corked while they are
   * written, since ioredis writes each command on its own otherwise. On a
   * cluster the commands go to several nodes, so they are written as they come.
   */
  protected override writeTogether(writes: () => void): void {
    const stream = this.topology === 'cluster' ? undefined : (this.publisher as Redis).stream;
    if (stream === undefined || stream === null) return writes();
    stream.cork();
    try {
      writes();
    } finally {
      stream.uncork();
    }
  }

  private write(channel: string, frame: Buffer): Promise<number> {
    // an ACL refusal, a failover (too many redirections, CLUSTERDOWN) or an outage: ours, naming the channel
    const operation = `publish to "${channel}"`;
    if (this.topology !== 'cluster') return this.typed(operation, this.publisher.publish(channel, frame));
    if (this.sharded(channel)) return this.typed(operation, this.publisher.spublish(channel, frame) as Promise<number>);
    // A keyless PUBLISH goes to a random node, and two nodes may deliver one channel's frames out of order.
    return this.typed(operation, classicPublishScript.run(this.publisher, [channel], [channel, frame]));
  }

  /** `work`, failing with {@link redisFailure}'s typed errors instead of ioredis's. */
  private typed<T>(operation: string, work: Promise<T>): Promise<T> {
    return work.catch((error: unknown) => {
      throw redisFailure(operation, error, this.opened.target);
    });
  }

  /**
   * Runs a batch of (un)subscriptions: classic channels in one call, shard
   * channels one call each (ioredis refuses an SSUBSCRIBE whose channels span
   * slots).
   */
  private async split(channels: string[], classic: (plain: string[]) => Promise<unknown>, shard: (channel: string) => Promise<unknown>): Promise<void> {
    if (this.topology !== 'cluster') {
      await classic(channels);
      return;
    }
    const plain = channels.filter((channel) => !this.sharded(channel));
    await Promise.all([plain.length > 0 ? classic(plain) : undefined, ...channels.filter((channel) => this.sharded(channel)).map(shard)]);
  }

  /** On a cluster, a channel with a hash tag is a shard channel. */
  private sharded(channel: string): boolean {
    return this.topology === 'cluster' && channel.includes('{');
  }

  /** What `connect()` may take before it gives up, in ms (a server that accepts and never answers). */
  private get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  get status(): RouteStatus {
    return this.state;
  }

  /** Where Redis is (`host:port`, a socket path, the cluster seeds or the sentinels), for messages. */
  get target(): string {
    return this.opened.target;
  }

  async connect(): Promise<void> {
    if (this.state === 'ready') return;
    if (this.state === 'closing' || this.state === 'closed') throw new ConnectionError(this.opened.target, 'the route is closed');
    assertLentConnectionOpen(this.opened);
    this.state = 'connecting';
    this.options.logger.debug({ target: this.opened.target }, 'connecting to redis');
    let lastError: Error | undefined;
    const remember = (error: Error) => (lastError = redactCredentials(error));
    this.publisher.on('error', remember);
    this.subscriber.on('error', remember);
    let timer: NodeJS.Timeout | undefined;
    const stopWatching: Array<() => void> = [];
    const timeoutMs = this.connectTimeoutMs;
    try {
      await Promise.race([
        Promise.all([connectIfNeeded(this.publisher), connectIfNeeded(this.subscriber)]).then(() => assertDataServer(this.opened)),
        new Promise<never>((_, reject) => {
          // ioredis's own connectTimeout covers the TCP handshake only: a server that accepts and never answers would hang here
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms (connectTimeoutMs)`)), timeoutMs);
          this.abortConnect = reject;
          // seeds that reach no cluster, or a master name no sentinel knows: ioredis would retry until the timeout
          // (on both connections: the first to fail may be either)
          for (const connection of [this.publisher, this.subscriber]) stopWatching.push(watchTopologyRefusal(this.opened, reject, connection));
        }),
      ]);
    } catch (error) {
      // leave nothing retrying in the background: the caller decides whether to try again; a retry may start at
      // once, so the connections are cut (not closed politely: a server that never answered may never close its side)
      await Promise.all([cut(this.subscriber), this.ownsPublisher ? cut(this.publisher) : undefined]);
      if ((this.state as RouteStatus) !== 'closing' && (this.state as RouteStatus) !== 'closed') this.state = 'idle';
      if (error instanceof IntracomError) throw error; // a TopologyError says what to connect with instead
      const notACluster = notAClusterError(this.opened, lastError ?? error);
      if (notACluster !== undefined) throw notACluster;
      const ours = error instanceof Error && /connectTimeoutMs|closed while/.test(error.message);
      const cause = ours ? error : (lastError ?? error);
      throw new ConnectionError(this.opened.target, cause instanceof Error ? cause.message : String(cause), { cause });
    } finally {
      clearTimeout(timer);
      for (const stop of stopWatching) stop();
      this.abortConnect = undefined;
      this.publisher.off('error', remember);
      this.subscriber.off('error', remember);
    }
    this.state = 'ready';
    this.options.logger.debug({ target: this.opened.target }, 'connected to redis');
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
    const started = performance.now();
    // QUIT goes after what is queued, so a reachable Redis gets every frame already sent
    const quit = reachable && (await withinMs(Promise.all([quietly(this.subscriber.quit()), this.ownsPublisher ? quietly(this.publisher.quit()) : undefined]), timeoutMs));
    const abandoned = queuedCommands(this.subscriber) + (this.ownsPublisher ? queuedCommands(this.publisher) : 0);
    if (abandoned > 0) {
      const waitedMs = Math.round(performance.now() - started);
      this.options.logger.warn({ abandonedCommands: abandoned, waitedMs, reachable }, 'closed with commands Redis never answered; they are rejected');
    }
    // a connection that is reconnecting has no socket left to close, so ioredis would never reject what it holds
    const outcome = new RedisUnavailableError('a command', `close() abandoned it before Redis answered${reachable ? '' : ' (Redis unreachable)'}; it may or may not have been applied`);
    rejectQueued(this.subscriber, outcome);
    if (this.ownsPublisher) rejectQueued(this.publisher, outcome);
    for (const detach of this.detachers.splice(0)) detach();
    // after a QUIT Redis closes the connections; otherwise they are cut, so that nothing outlives close()
    if (quit) {
      this.subscriber.disconnect();
      if (this.ownsPublisher) this.publisher.disconnect();
    } else await Promise.all([cut(this.subscriber), this.ownsPublisher ? cut(this.publisher) : undefined]);
    this.state = 'closed';
    this.warnings.flush();
    this.emit('close');
  }

  async channelSubscribers(channels: string[]): Promise<number[]> {
    if (channels.length === 0) return [];
    if (this.topology !== 'cluster') return numsub(this.publisher as Redis, channels);
    const cluster = this.publisher as Cluster;
    return Promise.all(
      channels.map(async (channel) => {
        // a shard channel's subscribers are on the master of its slot, which the script's key routes to
        if (this.sharded(channel)) {
          // A slot that has just moved has no subscribers on its new master until theirs follow it
          // (a slot-map reading and SSUBSCRIBE there): a 0 is believed only once it has held for 700 ms.
          let count = Number((await shardSubscribersScript.run(cluster, [channel], [channel]))[1]);
          for (const pauseMs of SLOT_MOVE_RECOUNTS_MS) {
            if (count > 0) break;
            await new Promise((resolve) => setTimeout(resolve, pauseMs));
            count = Number((await shardSubscribersScript.run(cluster, [channel], [channel]))[1]);
          }
          return count;
        }
        // classic subscribers sit on any node, each counted by its own node only
        const perNode = await Promise.all(cluster.nodes('all').map((node) => numsub(node, [channel]).catch(() => [0])));
        return perNode.reduce((sum, [count]) => sum + count, 0);
      }),
    );
  }

  /**
   * Runs a caller's command so that it always settles with our errors: while
   * the connection is down it fails at once (ioredis would hold it until
   * Redis is back, however long that takes), and a failure becomes one of
   * {@link redisFailure}'s typed errors.
   */
  private command<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return this.refusedWhileDown(operation) ?? this.typed(operation, run());
  }

  /** A rejection with NotConnectedError while reconnecting or closed (nothing is sent); undefined otherwise. */
  private refusedWhileDown(operation: string): Promise<never> | undefined {
    if (this.state === 'reconnecting' || this.state === 'closed') return Promise.reject(new NotConnectedError(operation, this.state));
    return undefined;
  }

  get(key: string): Promise<Buffer | null> {
    return this.command(`get ${key}`, () => this.publisher.getBuffer(key));
  }

  set(key: string, value: Buffer | string, ttlMs?: number): Promise<void> {
    return this.command(`set ${key}`, async () => {
      if (ttlMs === undefined) await this.publisher.set(key, value);
      else await this.publisher.set(key, value, 'PX', ttlMs);
    });
  }

  del(key: string): Promise<number> {
    return this.command(`delete ${key}`, () => this.publisher.del(key));
  }

  incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    return this.command(`increment ${key}`, async () => {
      const [outcome, value] = await incrementScript.run(this.publisher, [key], [by, ttlMs ?? 0]);
      if (outcome === 1) return Number(value);
      if (outcome === 0) throw incrementOutOfRange(key, by, value);
      throw new MalformedMessageError(key, `the stored value is not an integer that can be incremented (${value})`);
    });
  }

  keys(pattern: string): Promise<string[]> {
    return this.command(`scan ${pattern}`, () => scanKeys(this.publisher, pattern));
  }

  async announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number, exclusive = false): Promise<HeldInstanceId | void> {
    const { names } = this.options;
    const keys = [names.instanceSet(service), names.instanceAnnouncements(service)];
    if (!exclusive) {
      await this.typed(`announce ${service}`, announceScript.run(this.publisher, keys, [instanceId, announcement, ttlMs]));
      return;
    }
    // binary reply: the held announcement comes back as bytes
    const reply = await this.typed(`announce ${service}`, announceScript.runBuffer(this.publisher, keys, [instanceId, announcement, ttlMs, 'exclusive']));
    if (Array.isArray(reply)) return { announcement: reply[0], expiresInMs: Number(reply[1]) };
  }

  async withdraw(service: string, instanceId: string): Promise<void> {
    const { names } = this.options;
    await this.typed(`withdraw ${service}`, withdrawScript.run(this.publisher, [names.instanceSet(service), names.instanceAnnouncements(service)], [instanceId]));
  }

  liveInstances(service: string): Promise<Buffer[]> {
    const { names } = this.options;
    // read-only (EVALSHA_RO): a caller's ACL user reads the registry with %R~ and cannot write it
    return this.typed(`list the instances of ${service}`, liveInstancesScript.runBuffer(this.publisher, [names.instanceSet(service), names.instanceAnnouncements(service)], []));
  }

  // ---- durable queues (delegated to RedisStreamStore) ----

  streamAdd(stream: string, payload: Buffer): Promise<string> {
    // refused at once while reconnecting, like every other command: ioredis would hold it for its maxRetriesPerRequest
    // reconnect attempts (about 11 s, and without end if the caller's options say so) and might send it after the
    // caller was told it failed; refused, nothing was sent and sending again after `ready` is safe
    return this.refusedWhileDown(`append to ${stream}`) ?? this.streams.streamAdd(stream, payload);
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
    return this.command(`read ${stream}`, () => this.streams.streamRange(stream, start, end, count));
  }

  streamDelete(stream: string, ids: string[]): Promise<number> {
    return this.streams.streamDelete(stream, ids);
  }

  streamTrimBelow(stream: string, minId: string): Promise<number> {
    return this.streams.streamTrimBelow(stream, minId);
  }

  streamInfo(stream: string): Promise<StreamInfo> {
    return this.command(`inspect ${stream}`, () => this.streams.streamInfo(stream));
  }

  claimQueries(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): Promise<ClaimState[]> {
    return this.streams.claimQueries(doneKeys, claimsKey, holder, ttlMs, entries);
  }

  consumeStep(step: ConsumeStep): Promise<ConsumeStepResult> {
    return this.streams.consumeStep(step);
  }

  renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimsKey: string, queryIds: string[], ttlMs: number): Promise<RenewResult> {
    return this.streams.renewClaims(stream, group, holder, entryIds, claimsKey, queryIds, ttlMs);
  }

  releaseClaims(claimsKey: string, queryIds: string[], holder: string): Promise<void> {
    return this.streams.releaseClaims(claimsKey, queryIds, holder);
  }

  maintenanceLease(seenKey: string, seenTtlMs: number, leaseKey: string, holder: string, leaseMs: number): Promise<boolean> {
    return this.streams.maintenanceLease(seenKey, seenTtlMs, leaseKey, holder, leaseMs);
  }

  private watchConnection(connection: RedisCommands, role: string): void {
    const logger = this.options.logger;
    const listeners: Record<string, (...args: any[]) => void> = {
      error: (error: Error) => {
        redactCredentials(error);
        // an outage repeats this on every reconnect attempt
        this.warnings.warn(`connection ${role}`, { err: error, role }, 'redis connection error');
        if (this.listenerCount('error') > 0) this.emit('error', error);
      },
      reconnecting: (delayMs: number) => {
        // only a connection that was ready reconnects; a first connect that fails is connect()'s to report
        if (this.state !== 'ready' && this.state !== 'reconnecting') return;
        giveUpLikeIoredis(connection);
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
    if (this.topology !== 'cluster') {
      for (let i = 0; i < channels.length; i += MAX_NAMES_PER_CALL) await this.subscriber.subscribe(...channels.slice(i, i + MAX_NAMES_PER_CALL));
      for (let i = 0; i < patterns.length; i += MAX_NAMES_PER_CALL) await this.subscriber.psubscribe(...patterns.slice(i, i + MAX_NAMES_PER_CALL));
    }
    if (this.state !== 'reconnecting') return;
    this.state = 'ready';
    this.options.logger.info({ channels: channels.length, patterns: patterns.length }, 'reconnected to redis, subscriptions restored');
    this.emit('ready');
  }
}

/**
 * ioredis's queues of a connection: sent and unanswered, not sent yet, and
 * sent before a drop and kept to be sent again once ready (`prevCommandQueue`,
 * which its own flushQueue() leaves out: a connection that reconnects to a
 * socket that drops again before ready would hold those commands forever).
 */
interface Queues {
  commandQueue?: { length: number };
  offlineQueue?: { length: number };
  prevCommandQueue?: { length: number; shift(): { command: { reject(error: Error): void } } | undefined } | null;
  flushQueue?: (error: Error) => void;
}

/** Commands sent or queued on a connection and not yet answered. */
function queuedCommands(connection: RedisCommands): number {
  const queues = connection as unknown as Queues;
  return (queues.commandQueue?.length ?? 0) + (queues.offlineQueue?.length ?? 0) + (queues.prevCommandQueue?.length ?? 0);
}

/** Rejects every command queued or sent on `connection` and not answered (a Cluster keeps its own queues). */
function rejectQueued(connection: RedisCommands, error: Error): void {
  const queues = connection as unknown as Queues;
  queues.flushQueue?.(error);
  rejectHeldForResend(connection, error);
}

/**
 * Every `maxRetriesPerRequest + 1` reconnect attempts ioredis rejects the
 * commands it holds (MaxRetriesPerRequestError), except those kept to be
 * sent again: they are rejected at the same moment here, so that a command
 * caught by a drop settles as documented (about 11 s with the defaults)
 * even when each new socket drops before it is ready.
 */
function giveUpLikeIoredis(connection: RedisCommands): void {
  const { retryAttempts, options } = connection as unknown as { retryAttempts?: number; options?: { maxRetriesPerRequest?: number | null } };
  const most = options?.maxRetriesPerRequest;
  if (typeof most !== 'number' || most < 0 || retryAttempts === undefined || retryAttempts % (most + 1) !== 0) return;
  rejectHeldForResend(connection, new RedisUnavailableError('a command', `the connection dropped before Redis answered, and it was not back after ${most} reconnect attempts (maxRetriesPerRequest); it may or may not have been applied`));
}

/** Rejects the commands a connection keeps to send again once ready. */
function rejectHeldForResend(connection: RedisCommands, error: Error): void {
  const held = (connection as unknown as Queues).prevCommandQueue;
  for (let item = held?.shift(); item !== undefined; item = held?.shift()) item.command.reject(error);
}

/** Names for an operation's label: the first few, then how many more. */
function listed(names: string[]): string {
  const shown = names.slice(0, 3).map((name) => `"${name}"`).join(', ');
  return names.length > 3 ? `${shown} and ${names.length - 3} more` : shown;
}

async function quietly(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch {
    // closing: a connection that is already gone is what we want
  }
}
