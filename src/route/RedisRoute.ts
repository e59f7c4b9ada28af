import type Redis from 'ioredis';
import type { Cluster } from 'ioredis';
import { ConnectionError } from '../errors/ConnectionError';
import { IntracomError } from '../errors/IntracomError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { assertNotClusterNode, openConnection, type OpenedConnection, type RedisCommands, type RedisConnection, type Topology } from './connection';
import { FramedRoute } from './FramedRoute';
import { LuaScript } from './LuaScript';
import { withSocketErrorGuard } from './socketErrorGuard';
import { RedisStreamStore } from './RedisStreamStore';
import type { AckOptions, ClaimState, QueryClaimRequest, RenewResult, StreamEntry, StreamInfo } from './StreamStore';
import { announceScript, liveInstancesScript, withdrawScript } from './registryScripts';
import type { Route, RouteStatus } from './Route';
import type { RouteOptions } from './RouteOptions';

export type { RedisConnection } from './connection';

/** The subscribers of a shard channel, on the master of its slot (the channel is the routing key). */
const shardSubscribersScript = new LuaScript<[string, number]>(
  'shardSubscribers',
  1,
  `-- KEYS[1] the shard channel, as a routing key only; ARGV[1] the channel
-- returns { channel, subscribers }
return redis.call('PUBSUB', 'SHARDNUMSUB', ARGV[1])`,
);

/** PUBSUB NUMSUB (or SHARDNUMSUB) on one connection: RESP2 and RESP3 both answer a flat channel, count, ... list. */
async function numsub(connection: Redis, kind: 'NUMSUB' | 'SHARDNUMSUB', channels: string[]): Promise<number[]> {
  const reply = (await connection.call('PUBSUB', kind, ...channels)) as unknown[] | Record<string, unknown>;
  const counts = new Map<string, number>();
  if (Array.isArray(reply)) for (let i = 0; i + 1 < reply.length; i += 2) counts.set(String(reply[i]), Number(reply[i + 1]));
  else for (const [channel, count] of Object.entries(reply)) counts.set(channel, Number(count));
  return channels.map((channel) => counts.get(channel) ?? 0);
}

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

  constructor(connection: RedisConnection, options: RouteOptions) {
    super(options, (channel, frame) => this.write(channel, frame), {
      subscribe: async (c) => void (await (this.sharded(c) ? this.subscriber.ssubscribe(c) : this.subscriber.subscribe(c))),
      unsubscribe: async (c) => void (await (this.sharded(c) ? this.subscriber.sunsubscribe(c) : this.subscriber.unsubscribe(c))),
      psubscribe: async (p) => void (await this.subscriber.psubscribe(p)),
      punsubscribe: async (p) => void (await this.subscriber.punsubscribe(p)),
    });
    this.opened = openConnection(connection);
    this.publisher = this.opened.commands;
    this.ownsPublisher = this.opened.owned;
    this.topology = this.opened.topology;
    if (this.topology === 'cluster') {
      // ioredis replays classic and sharded subscriptions per node and per shard after moves and failovers
      this.subscriber = (this.publisher as Cluster).duplicate([], { lazyConnect: true, shardedSubscribers: true });
      this.subscriber.on('smessageBuffer', (channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), undefined, frame));
    } else {
      // We replay subscriptions ourselves, so that `ready` after a reconnect means "subscribed again".
      const publisher = this.publisher as Redis;
      this.subscriber = publisher.duplicate({ lazyConnect: true, autoResubscribe: false, Connector: withSocketErrorGuard(publisher.options).Connector });
    }
    this.streams = new RedisStreamStore(this.publisher, options.durability);
    this.watchConnection(this.publisher, 'publisher');
    this.watchConnection(this.subscriber, 'subscriber');

    this.subscriber.on('messageBuffer', (channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), undefined, frame));
    this.subscriber.on('pmessageBuffer', (pattern: string, channel: Buffer, frame: Buffer) => this.table.deliver(channel.toString(), pattern, frame));
  }

  private write(channel: string, frame: Buffer): Promise<number> {
    if (this.topology !== 'cluster') return this.publisher.publish(channel, frame);
    // During a failover ioredis gives up with its own errors (too many redirections, CLUSTERDOWN): ours instead.
    const typed = (error: unknown): never => {
      throw new RedisUnavailableError(`publish to ${channel}`, error instanceof Error ? error.message : String(error), { cause: error });
    };
    if (this.sharded(channel)) return (this.publisher.spublish(channel, frame) as Promise<number>).catch(typed);
    // A keyless PUBLISH goes to a random node, and two nodes may deliver one channel's frames out of order.
    return classicPublishScript.run(this.publisher, [channel], [channel, frame]).catch(typed);
  }

  /** On a cluster, a channel with a hash tag is a shard channel. */
  private sharded(channel: string): boolean {
    return this.topology === 'cluster' && channel.includes('{');
  }

  get status(): RouteStatus {
    return this.state;
  }

  async connect(): Promise<void> {
    if (this.state === 'ready') return;
    this.state = 'connecting';
    let lastError: Error | undefined;
    const remember = (error: Error) => (lastError = error);
    this.publisher.on('error', remember);
    this.subscriber.on('error', remember);
    try {
      await Promise.all([connectIfNeeded(this.publisher), connectIfNeeded(this.subscriber)]);
      await assertNotClusterNode(this.opened);
    } catch (error) {
      // leave nothing retrying in the background: the caller decides whether to try again
      this.subscriber.disconnect();
      if (this.ownsPublisher) this.publisher.disconnect();
      this.state = 'idle';
      if (error instanceof IntracomError) throw error;
      const cause = lastError ?? error;
      throw new ConnectionError(this.opened.target, cause instanceof Error ? cause.message : String(cause), { cause });
    } finally {
      this.publisher.off('error', remember);
      this.subscriber.off('error', remember);
    }
    this.state = 'ready';
    this.emit('ready');
  }

  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.batcher.flush();
    this.table.clear();
    this.streams.close();
    await quietly(this.subscriber.quit());
    if (this.ownsPublisher) await quietly(this.publisher.quit());
    this.subscriber.disconnect();
    if (this.ownsPublisher) this.publisher.disconnect();
    this.state = 'closed';
    this.warnings.flush();
    this.emit('close');
  }

  async channelSubscribers(channels: string[]): Promise<number[]> {
    if (channels.length === 0) return [];
    if (this.topology !== 'cluster') return numsub(this.publisher as Redis, 'NUMSUB', channels);
    const cluster = this.publisher as Cluster;
    return Promise.all(
      channels.map(async (channel) => {
        // a shard channel's subscribers are on the master of its slot, which the script's key routes to
        if (this.sharded(channel)) return Number((await shardSubscribersScript.run(cluster, [channel], [channel]))[1]);
        // classic subscribers sit on any node, each counted by its own node only
        const perNode = await Promise.all(cluster.nodes('all').map((node) => numsub(node, 'NUMSUB', [channel]).catch(() => [0])));
        return perNode.reduce((sum, [count]) => sum + count, 0);
      }),
    );
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

  streamDeadLetter(stream: string, group: string, id: string, deadStream: string, payload: Buffer, remove: boolean): Promise<string> {
    return this.streams.streamDeadLetter(stream, group, id, deadStream, payload, remove);
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

  claimQueries(doneKeys: string[], requests: QueryClaimRequest[], holder: string, ttlMs: number): Promise<ClaimState[]> {
    return this.streams.claimQueries(doneKeys, requests, holder, ttlMs);
  }

  renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimKeys: string[], ttlMs: number): Promise<RenewResult> {
    return this.streams.renewClaims(stream, group, holder, entryIds, claimKeys, ttlMs);
  }

  releaseClaims(claimKeys: string[], holder: string): Promise<void> {
    return this.streams.releaseClaims(claimKeys, holder);
  }

  private watchConnection(connection: RedisCommands, role: string): void {
    const logger = this.options.logger;
    connection.on('error', (error: Error) => {
      // an outage repeats this on every reconnect attempt
      this.warnings.warn(`connection ${role}`, { err: error, role }, 'redis connection error');
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    connection.on('reconnecting', (delayMs: number) => {
      if (this.state === 'closing' || this.state === 'closed') return;
      logger.info({ role, delayMs }, 'reconnecting to redis');
      this.state = 'reconnecting';
      this.emit('reconnecting', { role, delayMs });
    });
    connection.on('close', () => {
      if (this.state === 'ready') this.emit('connectionLost', { role });
    });
    connection.on('ready', () => {
      if (this.state !== 'reconnecting') return;
      this.recover().catch((error: unknown) => logger.warn({ err: error }, 'could not restore subscriptions; will retry on the next reconnect'));
    });
  }

  /** After a reconnect: subscribe again to every channel and pattern, then report ready. */
  private async recover(): Promise<void> {
    if (this.publisher.status !== 'ready' || this.subscriber.status !== 'ready') return;
    const { channels, patterns } = this.table.active();
    if (this.topology !== 'cluster') {
      if (channels.length > 0) await this.subscriber.subscribe(...channels);
      if (patterns.length > 0) await this.subscriber.psubscribe(...patterns);
    }
    if (this.state !== 'reconnecting') return;
    this.state = 'ready';
    this.options.logger.info({ channels: channels.length, patterns: patterns.length }, 'reconnected to redis, subscriptions restored');
    this.emit('ready');
  }
}

async function connectIfNeeded(connection: RedisCommands): Promise<void> {
  if (connection.status === 'ready') return;
  if (connection.status === 'wait' || connection.status === 'end') {
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

async function quietly(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch {
    // closing: a connection that is already gone is what we want
  }
}
