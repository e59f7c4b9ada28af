import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { RedisClient } from '../client/RedisClient';
import { ConnectionError } from '../errors/ConnectionError';
import { IntracomError } from '../errors/IntracomError';
import { redisFailure } from '../route/redisFailure';
import { watchTopologyRefusal } from '../route/topologyRefusals';
import { TopologyError } from '../errors/TopologyError';
import { ValidationError } from '../errors/ValidationError';
import { redactCredentials } from '../log/redact';
import { assertLentConnectionOpen, assertDataServer, closedByOwner, connectIfNeeded, cut, describeConnection, topologyOf, notAClusterError, openConnection, reviveWhenEnded, type OpenedConnection, type RedisCommands } from '../route/connection';
import { MemoryMutexStore } from './MemoryMutexStore';
import type { MutexStore } from './MutexStore';
import { RedisMutexStore } from './RedisMutexStore';

/**
 * Where a RedisMutex's locks live and who owns the connection: resolves the
 * `redis` option into a {@link MutexStore} (Redis, or the memory route's bus),
 * connects a connection it created on first use, reports its outages once,
 * and closes it (and only it) on close.
 */
export class MutexConnection {
  /** The connection, when the mutexes live in Redis (none on the memory route). */
  readonly redis: RedisCommands | undefined;
  readonly store: MutexStore;
  /** True when the connection was created here, from a URL or options: it is ours to close. */
  readonly owned: boolean;
  /** The RedisClient's namespace, when `redis` is a RedisClient. */
  readonly namespace: string | undefined;
  /** `<service>:<instanceId>` of the RedisClient, else `<hostname>:<pid>`. */
  readonly defaultNodeId: string;
  /** The connection made from a URL or options, or lent as an ioredis instance: checked once connected. */
  private readonly opened: OpenedConnection | undefined;
  /** A lent connection not yet checked (open, and not one node of a cluster): the first call checks it. */
  private lentUnchecked = false;
  /** Why a connection created here can never serve the mutexes (it reached a Sentinel, a cluster node...): every later call is refused with it. */
  private wrongTopology: TopologyError | undefined;
  /** The connection is a RedisClient's: its client connects it and closes it, so it is only checked once ready. */
  private readonly fromClient: boolean;
  /** Where Redis is, for errors. */
  readonly target: string;
  /** Why a connection created here is down: its last error since it was last ready. */
  lastError: Error | undefined;
  private connecting: Promise<void> | undefined;
  private outageReported = false;
  /** The connection created here has been ready once: an end after that is ioredis giving up, not a failed first connect. */
  private wasReady = false;
  private closed = false;
  /**
   * The connection created here was refused at its first connect (WRONGPASS, NOAUTH): it was cut, so that
   * ioredis stops retrying with those credentials, and the next call connects it again.
   */
  private refusedAtConnect = false;
  private stopReviving: (() => void) | undefined;

  constructor(redis: unknown) {
    let defaultNodeId = `${hostname()}:${process.pid}`;
    if (redis instanceof RedisClient) {
      // the route's contract names what the locks can live on (route.medium)
      const medium = redis.route.medium;
      if (medium?.kind === 'memory') {
        // the memory route: the instances of this process share its bus, as they would share Redis
        this.redis = undefined;
        this.store = new MemoryMutexStore(medium.bus);
      } else if (medium?.kind === 'redis') {
        this.redis = medium.connection;
        this.store = new RedisMutexStore(this.redis);
        // the client refuses a one-server connection to a cluster node at its connect(), which the mutex does not wait for
        this.opened = { commands: this.redis, owned: false, topology: topologyOf(this.redis), target: describeConnection(this.redis) };
        this.lentUnchecked = true;
      } else {
        throw new ValidationError(`redis must be a RedisClient on a route with a redis or memory medium (or a URL, ioredis options or an ioredis instance); received a RedisClient on a custom route`);
      }
      this.owned = false;
      this.fromClient = true;
      this.namespace = redis.names.namespace;
      defaultNodeId = `${redis.service}:${redis.instanceId}`;
    } else {
      // Created here, so made to fail fast: with no offline queue and no retry of a command in
      // flight, a call made while Redis is unreachable rejects at once instead of waiting for
      // a reconnection, and nothing is sent later on behalf of a caller who was told it failed.
      // A Redis or Cluster given is adopted as it is; anything that is no connection is refused.
      const opened = openConnection(redis, { enableOfflineQueue: false, maxRetriesPerRequest: 0 });
      this.redis = opened.commands;
      this.store = new RedisMutexStore(this.redis);
      this.owned = opened.owned;
      this.fromClient = false;
      this.opened = opened;
      this.lentUnchecked = !opened.owned;
    }
    this.defaultNodeId = defaultNodeId;
    this.target = this.redis === undefined ? 'memory' : describeConnection(this.redis);
    if (this.owned && this.redis !== undefined) {
      // a handshake refused (WRONGPASS, NOPERM) is reported here; connect() and later commands only see "closed"
      this.redis.on('error', (error: Error) => (this.lastError = error));
      this.redis.on('ready', () => (this.lastError = undefined));
      // once connected, a connection ioredis ends on its own (not by close()) is connected again
      this.stopReviving = reviveWhenEnded(this.redis, () => this.wasReady && !this.closed);
      this.redis.once('ready', () => (this.wasReady = true));
    }
  }

  /** Logs the first error of a connection created here, once per outage. */
  reportOutages(logger: Logger): void {
    const redis = this.redis;
    if (!this.owned || redis === undefined) return;
    redis.on('error', (error: Error) => {
      redactCredentials(error);
      if (this.outageReported) return;
      this.outageReported = true;
      logger.warn({ err: error }, 'redis connection error; mutex calls fail until it is back');
    });
    redis.on('ready', () => {
      this.outageReported = false;
    });
  }

  /** True until a connection created lazily has connected: calls must wait for {@link connect} first. */
  get mustConnect(): boolean {
    const redis = this.redis;
    // a lent connection its owner closed after first use goes through connect() too, which refuses it with the
    // documented ConnectionError (its command would fail "Connection is closed", an outcome it cannot know)
    return redis !== undefined && (this.connecting !== undefined || redis.status === 'wait' || this.lentUnchecked || this.refusedAtConnect || this.wrongTopology !== undefined || (!this.owned && closedByOwner(redis)));
  }

  /**
   * Connects a lazy connection once, and checks a connection (created or
   * lent) the way a RedisClient's connect() does: a lent one (or a lent
   * RedisClient's) closed by its owner, before or after first use, cluster seeds that reach no cluster, a Sentinel master name no
   * sentinel knows, and a one-server connection to a cluster node are
   * refused. Every caller meanwhile waits for the same attempt, each at
   * most `timeoutMs`.
   */
  async connect(operation: string, timeoutMs: number): Promise<void> {
    const redis = this.redis as RedisCommands; // only called when the mutexes live in Redis
    const opened = this.opened;
    this.connecting ??= (async () => {
      // the address names no server the mutexes can use, and reconnecting will not change that (ioredis may still retry it)
      if (this.wrongTopology !== undefined) throw this.wrongTopology;
      if (opened !== undefined && !this.fromClient) assertLentConnectionOpen(opened);
      if (this.fromClient && closedByOwner(redis)) {
        throw new ConnectionError(this.target, 'the RedisClient passed in was closed by its owner (close()), and a RedisMutex does not reopen a connection it was lent: pass a connected RedisClient');
      }
      // a RedisClient's connection is connected here only when nothing connected it yet (never reopened once closed)
      if (this.fromClient ? redis.status === 'wait' : redis.status !== 'ready') await this.open(redis, opened);
      if (opened === undefined || (this.fromClient && redis.status !== 'ready')) return; // a RedisClient's, not up: checked at a later call
      try {
        await assertDataServer(opened);
      } catch (error) {
        if (opened.owned) {
          redis.disconnect();
          if (error instanceof TopologyError) this.wrongTopology = error;
        }
        throw error;
      }
      this.lentUnchecked = false;
      this.refusedAtConnect = false;
    })().finally(() => {
      this.connecting = undefined;
    });
    const connecting = this.connecting;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          // nothing was sent: the call's command waits for this connection
          timer = setTimeout(() => reject(new ConnectionError(this.target, `no answer within ${timeoutMs} ms (commandTimeoutMs) while connecting for ${operation}`)), timeoutMs);
          timer.unref();
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connects a lazy connection (or waits for a lent one to be ready), its failures typed; one that can never succeed is refused at once. */
  private async open(redis: RedisCommands, opened: OpenedConnection | undefined): Promise<void> {
    let stopWatching = (): void => undefined;
    if (this.refusedAtConnect) this.lastError = undefined; // the refusal of the last attempt says nothing of this one
    try {
      // seeds that reach no cluster, or a master name no sentinel knows: ioredis would retry for ever
      const refused = new Promise<never>((_, reject) => {
        if (opened !== undefined) stopWatching = watchTopologyRefusal(opened, reject);
      });
      await Promise.race([connectIfNeeded(redis), refused]);
    } catch (error) {
      if (error instanceof TopologyError) {
        if (opened?.owned === true) {
          redis.disconnect();
          this.wrongTopology = error;
        }
        throw error;
      }
      const notACluster = opened === undefined ? undefined : notAClusterError(opened, this.lastError ?? error);
      if (notACluster !== undefined) throw notACluster;
      // Redis answered the handshake with a refusal (WRONGPASS, NOAUTH, an ACL denial): not an outage
      const refusal = this.lastError?.name === 'ReplyError' ? this.lastError : error instanceof Error && error.name === 'ReplyError' ? error : undefined;
      if (refusal !== undefined && /^(MOVED|ASK) /.test(refusal.message)) throw redisFailure('connect', refusal, this.target);
      if (refusal !== undefined) {
        if (opened?.owned === true) {
          // ioredis would retry with the refused credentials in the background, and the next call would be refused
          // unsent until its retry happened to succeed: cut it, and let the next call connect again
          this.refusedAtConnect = true;
          await cut(redis);
        }
        throw new ConnectionError(this.target, refusal.message, { cause: refusal });
      }
      // the call's command was never sent: the error a RedisClient's connect() gives, not an outcome unknown
      if (error instanceof IntracomError) throw error;
      const cause = this.lastError ?? error;
      throw new ConnectionError(this.target, cause instanceof Error ? cause.message : String(cause), { cause });
    } finally {
      stopWatching();
    }
  }

  /** Waits for a connection attempt in progress to end, whatever its outcome. */
  async settled(): Promise<void> {
    await this.connecting?.catch(() => undefined);
  }

  /** Closes the connection if it was created here; a lent one stays its owner's. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopReviving?.();
    if (!this.owned || this.redis === undefined) return;
    if (this.redis.status === 'ready') {
      try {
        await this.redis.quit();
      } catch {
        // already gone: what we want
      }
    }
    this.redis.disconnect();
  }
}
