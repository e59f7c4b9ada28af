import type { Socket } from 'node:net';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConnectionError } from '../errors/ConnectionError';
import { TopologyError } from '../errors/TopologyError';
import { ValidationError } from '../errors/ValidationError';
import { describeValue } from '../../vars/describe';
import { checkRedisConnection, redactUrl, refuseUrlQuery } from './checkRedisConnection';
import { ShardSubscriptionKeeper } from './ShardSubscriptionKeeper';
import { withSocketErrorGuard } from './socketErrorGuard';
import { withinMs } from './withinMs';

/** A node of a Redis Cluster, as a URL (`redis://host:port`) or an address. */
export type ClusterSeed = string | { host: string; port: number };

/**
 * A Redis Cluster given by its seed nodes: any few nodes of the cluster, from
 * which ioredis discovers the rest.
 */
export interface ClusterConnectionOptions {
  /** Seed nodes, at least one. */
  cluster: readonly ClusterSeed[];
  /**
   * ioredis Cluster options; `redisOptions` (AUTH, ACL user, TLS) apply to
   * every node. intracom turns `shardedSubscribers` on for its subscriber.
   * @default {}
   */
  clusterOptions?: ClusterOptions;
}

/**
 * How to reach Redis, wherever a connection is accepted:
 * - a URL: `redis://` or `rediss://` (one server), `redis+cluster://h1:p1,h2:p2`
 *   (cluster seeds), `redis+sentinel://s1:p1,s2:p2/<master name>` (Sentinel);
 *   the `rediss+` forms use TLS;
 * - ioredis options (AUTH, ACL user, TLS; `sentinels` with `name` for Sentinel);
 * - `{ cluster: [seeds], clusterOptions }`, or an array of seeds;
 * - an existing ioredis `Redis` or `Cluster` (it stays yours to close).
 *
 * Anything else is refused with a ValidationError, and a one-server
 * connection that lands on a cluster node fails `connect()` with a
 * TopologyError: nothing is ever silently replaced by a default server.
 */
export type RedisConnection = string | RedisOptions | ClusterConnectionOptions | readonly ClusterSeed[] | Redis | Cluster;

/** What commands go through: one server (possibly found through Sentinel) or a cluster. */
export type RedisCommands = Redis | Cluster;

/** The kind of deployment a connection reaches. */
export type Topology = 'standalone' | 'sentinel' | 'cluster';

/** A connection made (or adopted) from a {@link RedisConnection}. */
export interface OpenedConnection {
  readonly commands: RedisCommands;
  /** True when it was created here (and is to be closed by its creator). */
  readonly owned: boolean;
  readonly topology: Topology;
  /** For messages: the address, the seeds, or the sentinels and master name. */
  readonly target: string;
}

/**
 * Connection behaviour the caller needs on every data-node connection it
 * creates (lazy connect is always on). User options win over these, except
 * `lazyConnect`.
 */
export type ConnectionTuning = Pick<RedisOptions, 'enableOfflineQueue' | 'maxRetriesPerRequest'>;

/** True for an ioredis Cluster, from this copy of ioredis or another. */
export function isCluster(value: unknown): value is Cluster {
  if (value instanceof Cluster) return true;
  return typeof value === 'object' && value !== null && (value as { isCluster?: unknown }).isCluster === true && typeof (value as { duplicate?: unknown }).duplicate === 'function';
}

/** True for an ioredis Redis (one server or Sentinel), from this copy of ioredis or another. */
export function isRedis(value: unknown): value is Redis {
  if (value instanceof Redis) return true;
  const candidate = value as { isCluster?: unknown; duplicate?: unknown; sendCommand?: unknown; options?: unknown } | null;
  return typeof value === 'object' && candidate !== null && candidate.isCluster === false && typeof candidate.duplicate === 'function' && typeof candidate.sendCommand === 'function' && typeof candidate.options === 'object';
}

/**
 * Makes (or adopts) the command connection that `connection` describes, or
 * throws a ValidationError naming `option` and what was received.
 */
export function openConnection(connection: unknown, tuning: ConnectionTuning = {}, option = 'redis'): OpenedConnection {
  checkRedisConnection(option, connection);
  if (isCluster(connection)) {
    refuseClusterDb(connection.options.redisOptions?.db, `${option} (an ioredis Cluster) redisOptions.db`);
    refuseClusterOptions(connection.options, `${option} (an ioredis Cluster)`);
    return { commands: connection, owned: false, topology: 'cluster', target: describeCluster(connection) };
  }
  if (isRedis(connection)) {
    refuseRedisOptions(connection.options, `${option} (an ioredis Redis)`);
    const topology = connection.options.sentinels ? 'sentinel' : 'standalone';
    return { commands: connection, owned: false, topology, target: describeRedis(connection.options) };
  }
  if (typeof connection === 'string') return openUrl(connection, tuning, option);
  if (Array.isArray(connection)) return openCluster({ cluster: connection }, tuning, option);
  if (typeof connection !== 'object' || connection === null) {
    throw new ValidationError(`${option} must be a URL, ioredis options, cluster seeds, or an ioredis Redis or Cluster; received ${describeValue(connection)}`);
  }
  const prototype = Object.getPrototypeOf(connection);
  if (prototype !== Object.prototype && prototype !== null) {
    throw new ValidationError(`${option} must be a URL, ioredis options, cluster seeds, or an ioredis Redis or Cluster; received ${describeValue(connection)}, which is none of them`);
  }
  if ('cluster' in connection) return openCluster(connection as ClusterConnectionOptions, tuning, option);
  return openRedis(connection as RedisOptions, tuning, option);
}

/**
 * Fails with a TopologyError when a one-server connection reached a Redis
 * Cluster node (its commands would fail with MOVED on most keys) or a
 * Sentinel (it knows no data command: every call would fail with "unknown
 * command"). One INFO at connect time (its default sections hold both
 * `redis_mode` and `cluster_enabled`).
 */
export async function assertDataServer(opened: OpenedConnection): Promise<void> {
  if (opened.topology === 'cluster') return;
  const info = await (opened.commands as Redis).info();
  if (/^redis_mode:sentinel/m.test(info)) {
    throw new TopologyError(
      opened.target,
      'it is a Redis Sentinel, not a data server (INFO says redis_mode:sentinel): connect with redis+sentinel://<host>:<port>/<master name> or { sentinels, name } to reach the master it monitors',
    );
  }
  if (/^cluster_enabled:1/m.test(info)) {
    throw new TopologyError(
      opened.target,
      'it runs in cluster mode: connect with redis+cluster://<host>:<port>[,<host>:<port>...], { cluster: [seeds] } or an ioredis Cluster',
    );
  }
}

/**
 * The TopologyError for cluster seeds that reached a server without cluster
 * mode or a Sentinel (ioredis reports only "Failed to refresh slots cache"),
 * when `error` says so; undefined otherwise. `seeds`, when known, are the
 * seeds that answered so.
 */
export function notAClusterError(opened: OpenedConnection, error: unknown, seeds: readonly string[] = []): TopologyError | undefined {
  if (opened.topology !== 'cluster') return undefined;
  const nodeError = (error as { lastNodeError?: unknown } | undefined)?.lastNodeError;
  const message = nodeError instanceof Error ? nodeError.message : error instanceof Error ? error.message : '';
  if (/cluster support disabled/i.test(message)) {
    return new TopologyError(opened.target, 'it does not run in cluster mode: connect with redis://<host>:<port> (or Sentinel options) instead of cluster seeds', { cause: error });
  }
  // A data node always knows CLUSTER (and says "cluster support disabled" without cluster mode); a Sentinel does not.
  if (/unknown command [`']cluster[`']/i.test(message)) {
    return new TopologyError(
      opened.target,
      `${seeds.length === 0 ? 'a seed is' : `seed ${seeds.join(', ')} ${seeds.length === 1 ? 'is' : 'are'}`} a Redis Sentinel, not a cluster node (it answers CLUSTER SLOTS with "unknown command"): connect with redis+sentinel://<host>:<port>/<master name> or { sentinels, name } instead of cluster seeds`,
      { cause: error },
    );
  }
  return undefined;
}

/**
 * True when a connection lent to intracom was closed by its owner
 * (`disconnect()` or `quit()`, awaited or not, before or after it was
 * ready), or ended by ioredis for good: status `end`, or a manual close not
 * followed by a connect (on a Redis whatever its status until its socket has
 * closed; on a Cluster, which goes back to `close` after its `end`, once it
 * is closing).
 */
export function closedByOwner(connection: RedisCommands): boolean {
  const status = connection.status;
  if (status === 'end') return true;
  const { manuallyClosing } = connection as unknown as { manuallyClosing?: boolean };
  if (manuallyClosing !== true) return false;
  if (status === 'close' || status === 'disconnecting' || status === 'reconnecting') return true;
  // A Redis keeps its old status until its socket has closed: `ready` after `await quit()` (the server closes
  // once it has answered), `connecting` after a quit() or disconnect() before it was ready. Its flag is cleared
  // only when that close comes, so while it is set the connection is on its way to `end`.
  return !isCluster(connection);
}

/**
 * Fails at once with a ConnectionError when the connection lent to intracom
 * is closed ({@link closedByOwner}): intracom never reopens a connection that
 * is not its own, and waiting for it would only end in a timeout.
 */
export function assertLentConnectionOpen(opened: OpenedConnection): void {
  if (opened.owned || !closedByOwner(opened.commands)) return;
  const kind = isCluster(opened.commands) ? 'Cluster' : 'Redis';
  throw new ConnectionError(
    opened.target,
    `the ioredis ${kind} passed in was closed by its owner (status "${opened.commands.status}"), and intracom does not reopen a connection it was lent: connect() it again, or pass an open one`,
  );
}

/**
 * SCAN with MATCH over every key of the deployment: on a cluster, over every
 * master (a SCAN reaches one node only). Never blocks Redis.
 */
export async function scanAll(commands: RedisCommands, pattern: string, count = 500): Promise<string[]> {
  const nodes = isCluster(commands) ? commands.nodes('master') : [commands];
  const keys = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== '0');
  }
  return [...keys];
}

/**
 * How often a cluster subscriber rereads the slot map when nothing else makes
 * it (ms), unless the user's `clusterOptions.slotsRefreshInterval` says
 * otherwise. ioredis follows a slot that moves away from a subscriber's node
 * by rereading the map at once; a node that answers before it has learnt the
 * new owner leaves the subscription behind, and only a later reading brings it
 * back (docs/operations.md: slot migrations).
 */
export const SUBSCRIBER_SLOTS_REFRESH_MS = 2000;

/**
 * A subscriber connection for a cluster: shard channels subscribed on the
 * master of each slot (ioredis `shardedSubscribers`), re-subscribed when a
 * slot moves or a master fails over, and kept there by a
 * {@link ShardSubscriptionKeeper} while the connection is up.
 */
export function clusterSubscriber(cluster: Cluster): Cluster {
  const subscriber = endableCluster(cluster.duplicate([], { lazyConnect: true, shardedSubscribers: true, slotsRefreshInterval: cluster.options.slotsRefreshInterval ?? SUBSCRIBER_SLOTS_REFRESH_MS }));
  const keeper = new ShardSubscriptionKeeper(subscriber);
  subscriber.on('ready', () => keeper.start());
  subscriber.on('end', () => keeper.stop());
  return subscriber;
}

/**
 * `cluster`, made to stop its periodic slot-map reading for good once it has
 * ended. ioredis 6 arms that reading's next round when the one in flight
 * ends, even when `disconnect()` came meanwhile: the ref'd timer then reads
 * the slot map of nobody every `slotsRefreshInterval`, and the process
 * never exits after `close()`. A connection started again (see
 * {@link reviveWhenEnded}) arms it again in its `connect()`.
 */
export function endableCluster(cluster: Cluster): Cluster {
  const internals = cluster as unknown as { refreshSlotsCache(callback?: (error?: Error | null) => void): void; clearNodesRefreshInterval(): void; manuallyClosing: boolean };
  const refresh = internals.refreshSlotsCache.bind(cluster);
  internals.refreshSlotsCache = (callback) =>
    refresh((error) => {
      callback?.(error);
      // set by disconnect() and quit(), cleared by connect()
      if (internals.manuallyClosing || cluster.status === 'end') internals.clearNodesRefreshInterval();
    });
  // a round armed between disconnect() and the end
  cluster.on('end', () => internals.clearNodesRefreshInterval());
  return cluster;
}

/** For messages: where a connection points. */
export function describeConnection(commands: RedisCommands): string {
  return isCluster(commands) ? describeCluster(commands) : describeRedis(commands.options);
}

function openRedis(options: RedisOptions, tuning: ConnectionTuning, option: string): OpenedConnection {
  refuseRedisOptions(options, option);
  const sentinels = options.sentinels;
  if (sentinels !== undefined && sentinels !== null) {
    if (!Array.isArray(sentinels) || sentinels.length === 0) throw new ValidationError(`${option}.sentinels must be a non-empty array of { host, port }; received ${describeValue(sentinels)}`);
    if (typeof options.name !== 'string' || options.name.length === 0) {
      throw new ValidationError(`${option}.name must name the master group the sentinels monitor when ${option}.sentinels is given; received ${describeValue(options.name)}`);
    }
    // Drop the connection as soon as a sentinel announces a new master, instead of waiting for the old one to go.
    const commands = new Redis(withSocketErrorGuard({ ...tuning, failoverDetector: true, ...options, lazyConnect: true }));
    return { commands, owned: true, topology: 'sentinel', target: describeRedis(commands.options) };
  }
  const commands = new Redis(withSocketErrorGuard({ ...tuning, ...options, lazyConnect: true }));
  return { commands, owned: true, topology: 'standalone', target: describeRedis(commands.options) };
}

function openCluster(spec: ClusterConnectionOptions, tuning: ConnectionTuning, option: string): OpenedConnection {
  const seeds = spec.cluster;
  if (!Array.isArray(seeds) || seeds.length === 0) throw new ValidationError(`${option}.cluster must be a non-empty array of seed nodes; received ${describeValue(seeds)}`);
  const nodes = seeds.map((seed, i) => {
    if (typeof seed === 'string') {
      const [, hostPart, path, query] = /^(?:rediss?:\/\/)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?/.exec(seed) ?? [];
      refuseUrlQuery(query, ['db'], `${option}.cluster[${i}]`, JSON.stringify(redactUrl(seed)));
      refuseUrlDb(path, query, `${option}.cluster[${i}]`, redactUrl(seed));
      const parsed = parseHostList(hostPart ?? '', 6379, `${option}.cluster[${i}]`);
      if (parsed.length !== 1) throw new ValidationError(`${option}.cluster[${i}] must be one node; received ${JSON.stringify(seed)}`);
      return parsed[0];
    }
    if (typeof seed !== 'object' || seed === null || typeof seed.host !== 'string' || !validPort(seed.port)) {
      throw new ValidationError(`${option}.cluster[${i}] must be a URL or { host, port }; received ${describeValue(seed)}`);
    }
    return { host: seed.host, port: seed.port };
  });
  const clusterOptions = spec.clusterOptions ?? {};
  if (typeof clusterOptions !== 'object' || clusterOptions === null) throw new ValidationError(`${option}.clusterOptions must be ioredis Cluster options; received ${describeValue(clusterOptions)}`);
  refuseClusterDb(clusterOptions.redisOptions?.db, `${option}.clusterOptions.redisOptions.db`);
  refuseClusterOptions(clusterOptions, `${option}.clusterOptions`);
  const tls = typeof seeds[0] === 'string' && seeds[0].startsWith('rediss://') ? { tls: {} } : {};
  const { enableOfflineQueue, ...perNode } = tuning;
  const commands = endableCluster(
    new Cluster(nodes, {
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      ...clusterOptions,
      lazyConnect: true,
      redisOptions: { ...tls, ...perNode, ...clusterOptions.redisOptions },
    }),
  );
  return { commands, owned: true, topology: 'cluster', target: describeCluster(commands) };
}

function openUrl(url: string, tuning: ConnectionTuning, option: string): OpenedConnection {
  const match = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?(\?[^#]*)?$/i.exec(url);
  if (match === null) {
    // a one-server URL, checked by checkRedisConnection
    const commands = new Redis(url, withSocketErrorGuard({ ...tuning, lazyConnect: true }));
    return { commands, owned: true, topology: 'standalone', target: describeRedis(commands.options) };
  }
  const [, schemeAsWritten, kindAsWritten, userinfo, hosts, path, query] = match;
  const scheme = schemeAsWritten.toLowerCase();
  const kind = kindAsWritten.toLowerCase();
  const credentials: RedisOptions = {};
  if (userinfo?.includes(',')) {
    // `h1,user:pass@h2`: the part before @ would be read as the credentials
    throw new ValidationError(`${option} has credentials after its first host (${JSON.stringify(redactUrl(url))}): write them once, before the hosts (${scheme}+${kind}://user:password@host1:port1,host2:port2)`);
  }
  if (userinfo !== undefined && userinfo !== '') {
    const colon = userinfo.indexOf(':');
    const username = decodeURIComponent(colon === -1 ? '' : userinfo.slice(0, colon));
    const password = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(colon + 1));
    if (username !== '') credentials.username = username;
    if (password !== '') credentials.password = password;
  }
  const tls = scheme === 'rediss' ? { tls: {} } : {};
  if (kind === 'cluster') {
    const nodes = parseHostList(hosts, 6379, `${option} URL`);
    refuseUrlQuery(query, ['db'], `${option} URL`, JSON.stringify(redactUrl(url)));
    refuseUrlDb(path, query, `${option} URL`, redactUrl(url));
    return openCluster({ cluster: nodes, clusterOptions: { redisOptions: { ...tls, ...credentials } } }, tuning, option);
  }
  // a role, a db or anything else in the query would be dropped: the master is written to, the db is in the path
  refuseUrlQuery(query, ['sentinelPassword'], `${option} URL`, JSON.stringify(redactUrl(url)));
  const sentinels = parseHostList(hosts, 26379, `${option} URL`);
  const [name, db] = (path ?? '').slice(1).split('/');
  if (name === undefined || name === '') throw new ValidationError(`${option} URL: redis+sentinel:// needs the master name as its path (redis+sentinel://host:26379/mymaster); received ${JSON.stringify(redactUrl(url))}`);
  const options: RedisOptions = { sentinels, name: decodeURIComponent(name), ...credentials, ...tls };
  if (db !== undefined && db !== '') {
    if (!/^\d+$/.test(db)) throw new ValidationError(`${option} URL: the database after the master name must be a number; received ${JSON.stringify(db)}`);
    options.db = Number(db);
  }
  if (query !== undefined && /[?&]sentinelPassword=/.test(query)) options.sentinelPassword = decodeURIComponent(/[?&]sentinelPassword=([^&]*)/.exec(query)?.[1] ?? '');
  if (scheme === 'rediss') options.enableTLSForSentinelMode = true;
  return openRedis(options, tuning, option);
}

/**
 * ioredis options that would make intracom work silently wrong, refused by
 * name: a `keyPrefix` (ioredis adds it to some keys and not to others: the
 * names inside scripts, the scan patterns and the channels stay unprefixed,
 * so calls and queries reach nobody; `namespace` is the supported way to
 * share a Redis), and a Sentinel `role: 'slave'` (a replica refuses every
 * write).
 */
function refuseRedisOptions(options: RedisOptions | undefined, what: string): void {
  const keyPrefix = options?.keyPrefix;
  if (keyPrefix !== undefined && keyPrefix !== null && keyPrefix !== '') {
    throw new ValidationError(`${what} keyPrefix: intracom names every key and channel itself, and a prefix would reach only some of them (use the namespace option to share one Redis); received ${describeValue(keyPrefix)}`);
  }
  if (options?.sentinels && options.role !== undefined && options.role !== 'master') {
    throw new ValidationError(`${what} role: intracom writes, so it needs the master the sentinels name (role 'master'); received ${describeValue(options.role)}`);
  }
}

/** {@link refuseRedisOptions} for a cluster, and reads from replicas (`scaleReads`), which would read behind intracom's own writes. */
function refuseClusterOptions(options: ClusterOptions | undefined, what: string): void {
  refuseRedisOptions({ keyPrefix: options?.keyPrefix }, what);
  refuseRedisOptions({ keyPrefix: options?.redisOptions?.keyPrefix }, `${what} redisOptions`);
  const scaleReads = options?.scaleReads;
  if (scaleReads !== undefined && scaleReads !== 'master') {
    throw new ValidationError(`${what} scaleReads: intracom reads what it has just written (variables, the instance registry, locks), so it reads from masters only ('master'); received ${describeValue(scaleReads)}`);
  }
}

/**
 * The database a cluster URL or seed URL names, as its path (`/N`) or its
 * query (`?db=N`): refused unless none or 0, never dropped silently.
 */
function refuseUrlDb(path: string | undefined, query: string | undefined, what: string, shown: string): void {
  const fromPath = path === undefined || path === '' || path === '/' ? undefined : path.slice(1);
  const fromQuery = query === undefined ? undefined : /[?&]db=([^&]*)/.exec(query)?.[1];
  for (const db of [fromPath, fromQuery]) {
    if (db !== undefined && db !== '0') throw new ValidationError(`${what}: a Redis Cluster has one database (0), so its URL takes no path but /0 and no db but 0; received ${JSON.stringify(shown)}`);
  }
}

/** A cluster has database 0 only: any other (ioredis would send SELECT, which every node refuses) is refused here, by name. */
function refuseClusterDb(db: unknown, what: string): void {
  if (db !== undefined && db !== null && db !== 0) throw new ValidationError(`${what}: a Redis Cluster has one database (0); received ${describeValue(db)}`);
}

function parseHostList(list: string, defaultPort: number, what: string): Array<{ host: string; port: number }> {
  if (list === '') throw new ValidationError(`${what} names no host`);
  return list.split(',').map((part) => {
    const match = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d+))?$/.exec(part.trim());
    const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
    if (match === null || !validPort(port)) throw new ValidationError(`${what}: "${part}" is not host[:port]`);
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
}

function validPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536;
}

function describeRedis(options: RedisOptions): string {
  if (options.sentinels) return `sentinels ${options.sentinels.map((s) => `${s.host ?? '127.0.0.1'}:${s.port ?? 26379}`).join(',')} (master "${options.name}")`;
  return options.path ? String(options.path) : `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}`;
}

function describeCluster(cluster: Cluster): string {
  const seeds = (cluster as unknown as { startupNodes?: Array<{ host?: string; port?: number } | string> }).startupNodes ?? [];
  return `cluster ${seeds.map((s) => (typeof s === 'string' ? s : `${s.host ?? '127.0.0.1'}:${s.port ?? 6379}`)).join(',')}`;
}

/** The topology a connection describes, without connecting (a plain URL counts as one server until connected). */
export function topologyOf(connection: unknown): Topology {
  if (isCluster(connection) || Array.isArray(connection)) return 'cluster';
  if (isRedis(connection)) return connection.options.sentinels ? 'sentinel' : 'standalone';
  if (typeof connection === 'string') return /^rediss?\+cluster:/i.test(connection) ? 'cluster' : /^rediss?\+sentinel:/i.test(connection) ? 'sentinel' : 'standalone';
  if (typeof connection === 'object' && connection !== null) {
    if ('cluster' in connection) return 'cluster';
    if ('sentinels' in connection && (connection as RedisOptions).sentinels) return 'sentinel';
  }
  return 'standalone';
}

/**
 * True when the connection is not trying to connect: never started, ended,
 * or left `reconnecting` by a disconnect() that cleared its retry timer
 * (ioredis then stays in that state with nothing scheduled).
 */
export function stopped(connection: RedisCommands): boolean {
  const status = connection.status;
  if (status === 'wait' || status === 'end') return true;
  return status === 'reconnecting' && (connection as unknown as { reconnectTimeout?: unknown }).reconnectTimeout == null;
}

/**
 * Connects a connection that is not connected and not trying to ({@link stopped}),
 * or waits for one that is trying to be ready; rejects when it ends first.
 */
export async function connectIfNeeded(connection: RedisCommands): Promise<void> {
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

/** First pause before reconnecting a connection ioredis ended on its own (ms); doubled at each failure, up to 2 s. */
export const REVIVE_BASE_MS = 50;

/**
 * Reconnects `connection` whenever ioredis ends it on its own while `wanted()`
 * holds, after a pause that doubles at each failure (50 ms to 2 s), and
 * returns a function that stops doing so.
 *
 * ioredis gives up on a Sentinel connection for good (status `end`) when a
 * sentinel's `+switch-master` reaches its `failoverDetector` while it is
 * reconnecting: the detector stops the connector in the middle of its
 * `connect()`, which then fails with "Connection is closed." and ends the
 * connection instead of retrying. Found under load in Sentinel failovers: a
 * route stuck `reconnecting` with its command connection ended, its consumer
 * never processing the queries it held.
 */
export function reviveWhenEnded(connection: RedisCommands, wanted: () => boolean): () => void {
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  const onEnd = (): void => {
    if (!wanted() || timer !== undefined) return;
    const pause = Math.min(REVIVE_BASE_MS * 2 ** failures, 2000);
    failures += 1;
    timer = setTimeout(() => {
      timer = undefined;
      if (wanted() && connection.status === 'end') connection.connect().catch(() => undefined);
    }, pause);
    timer.unref();
  };
  const onReady = (): void => {
    failures = 0;
  };
  connection.on('end', onEnd);
  connection.on('ready', onReady);
  return () => {
    clearTimeout(timer);
    timer = undefined;
    connection.off('end', onEnd);
    connection.off('ready', onReady);
  };
}

/** How long {@link cut} waits for a cut connection to report its end: the margin connect() may take past connectTimeoutMs. */
export const CUT_WAIT_MS = 100;

/**
 * Ends a connection now and resolves once it has stopped, after at most
 * {@link CUT_WAIT_MS}. ioredis's disconnect() half-closes the socket and
 * waits up to 2 s (its disconnectTimeout) for the server's side: a server
 * that never answered is not waited for, so the sockets are destroyed.
 */
export async function cut(connection: RedisCommands): Promise<void> {
  const nodes: unknown[] = isCluster(connection) ? connection.nodes('all') : [connection];
  let onEnd = (): void => undefined;
  const ended = new Promise<void>((resolve) => (onEnd = resolve));
  connection.once('end', onEnd);
  connection.disconnect();
  for (const node of nodes) {
    const { stream, connector } = node as { stream?: Socket; connector?: { stream?: Socket } };
    stream?.destroy();
    connector?.stream?.destroy();
  }
  if (!stopped(connection)) await withinMs(ended, CUT_WAIT_MS);
  connection.off('end', onEnd);
  if (isCluster(connection) && connection.status === 'disconnecting') endCluster(connection);
}

/**
 * Ends a Cluster left `disconnecting`. ioredis 6 ends a disconnecting Cluster
 * when its last node connection ends; a node connection that was
 * reconnecting (its master killed, a failover under way) never ends, so the
 * Cluster stayed `disconnecting` for good: the commands in its offline queue
 * and those its failover delay re-sends there were never answered, and the
 * sends waiting on them stayed pending. Ended, it rejects them all.
 */
function endCluster(cluster: Cluster): void {
  const internals = cluster as unknown as { setStatus(status: string): void; handleCloseEvent(): void };
  internals.setStatus('close');
  internals.handleCloseEvent();
}
