import { ValidationError } from '../errors/ValidationError';
import { isCluster, isRedis, type RedisConnection } from './connection';

/**
 * URL schemes accepted for a Redis connection, with what they mean. The
 * cluster and Sentinel forms carry a list of hosts, which openConnection
 * (route/connection.ts) parses and checks.
 */
export const REDIS_URL_SCHEMES: Readonly<Record<string, string>> = Object.freeze({
  'redis:': 'plain TCP',
  'rediss:': 'TLS',
  'redis+cluster:': 'Redis Cluster seeds, plain TCP',
  'rediss+cluster:': 'Redis Cluster seeds, TLS',
  'redis+sentinel:': 'Sentinel addresses and master name, plain TCP',
  'rediss+sentinel:': 'Sentinel addresses and master name, TLS',
});

/** Schemes whose authority is a list of hosts (checked by openConnection). */
const HOST_LIST = /^rediss?\+(cluster|sentinel):\/\//i;

const SCHEMES = Object.keys(REDIS_URL_SCHEMES)
  .map((scheme) => `${scheme}//`)
  .join(' or ');
/** `scheme://[userinfo@]host[:port][/db][?query]`: the authority is read here because the WHATWG parser rejects a bad port without saying so. */
const AUTHORITY = /^([A-Za-z][A-Za-z0-9+.-]*:)\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?([^?#]*)/;

/** The URL as it may be shown: the password of its user info, and of its query (`password`, `sentinelPassword`), replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/?#]*:)[^@/?#]*@/, '$1***@').replace(/([?&](?:sentinelP|p)assword=)[^&#]*/g, '$1***');
}

function refuse(option: string, why: string, shown: string): never {
  throw new ValidationError(`${option} ${why}; received ${shown}`);
}

/**
 * The query parameters of a `redis://` or `rediss://` URL that ioredis reads
 * as what they say: every key of the query becomes an ioredis option, with a
 * string value (so `enableOfflineQueue=false` would be true), and an unknown
 * one is dropped without a word; only these are taken.
 */
export const PLAIN_URL_QUERY: readonly string[] = Object.freeze(['db', 'family', 'username', 'password', 'connectionName']);

/**
 * Throws a ValidationError naming `what`, the first query parameter of `query`
 * (`?a=1&b=2`, or undefined) not in `accepted`, and the accepted ones: a
 * parameter is never dropped silently.
 */
export function refuseUrlQuery(query: string | undefined, accepted: readonly string[], what: string, shown: string): void {
  if (query === undefined || query === '' || query === '?') return;
  for (const key of new URLSearchParams(query.slice(1)).keys()) {
    if (!accepted.includes(key)) {
      const takes = accepted.length === 0 ? 'takes no query parameter' : `takes only ${accepted.map((name) => `?${name}=`).join(', ')}`;
      throw new ValidationError(`${what}: query parameter ${JSON.stringify(key)} is not supported (this URL ${takes}); received ${shown}`);
    }
  }
}

function checkUrl(option: string, url: string): void {
  if (HOST_LIST.test(url)) return;
  const shown = JSON.stringify(redactUrl(url));
  const parts = AUTHORITY.exec(url);
  if (parts === null || !(parts[1].toLowerCase() in REDIS_URL_SCHEMES)) {
    refuse(option, `must be a URL starting ${SCHEMES} (or ioredis options, or an ioredis instance)`, shown);
  }
  const [, , , port, path] = parts;
  if (port !== undefined && port !== '' && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    refuse(option, `must name a port from 1 to 65535 (port ${JSON.stringify(port)})`, shown);
  }
  if (path !== '' && path !== '/' && !/^\/\d+$/.test(path)) refuse(option, `may only end with a database number such as /0 (path ${JSON.stringify(path)})`, shown);
  const query = /^[^?#]*(\?[^#]*)?/.exec(url)?.[1];
  refuseUrlQuery(query, PLAIN_URL_QUERY, option, shown);
  const params = new URLSearchParams(query?.slice(1) ?? '');
  const db = params.get('db');
  if (db !== null && !/^\d+$/.test(db)) refuse(option, `must give ?db= a database number (db ${JSON.stringify(db)})`, shown);
  // ioredis takes the path's database over the query's, silently
  if (db !== null && path.length > 1 && Number(path.slice(1)) !== Number(db)) refuse(option, `names two databases (path ${JSON.stringify(path)}, db ${JSON.stringify(db)})`, shown);
  const family = params.get('family');
  if (family !== null && family !== '4' && family !== '6') refuse(option, `must give ?family= 4 or 6 (family ${JSON.stringify(family)})`, shown);
  try {
    new URL(url);
  } catch {
    refuse(option, 'is not a valid URL', shown);
  }
}

function checkOptions(option: string, options: Record<string, unknown>): void {
  const { port, host, db, path } = options;
  if (port !== undefined && (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535)) {
    refuse(`${option}.port`, 'must be an integer from 1 to 65535', String(typeof port === 'string' ? JSON.stringify(port) : port));
  }
  if (host !== undefined && typeof host !== 'string') refuse(`${option}.host`, 'must be a string', String(host));
  if (path !== undefined && typeof path !== 'string') refuse(`${option}.path`, 'must be a string (a Unix socket)', String(path));
  if (db !== undefined && (typeof db !== 'number' || !Number.isInteger(db) || db < 0)) refuse(`${option}.db`, 'must be a non-negative integer', String(db));
}

/**
 * Returns `connection` when it can reach a Redis: a `redis://` or `rediss://`
 * URL (user and password, host, a port from 1 to 65535, an optional database
 * number, only the query parameters of {@link PLAIN_URL_QUERY}), ioredis options (with a valid port, host, path and db when given),
 * or an ioredis instance. Otherwise throws a ValidationError naming `option`
 * and the value (a URL's password shown as `***`) before any connection is
 * made: ioredis would throw a raw TypeError for a bad port and read an
 * `http://` URL as something else.
 */
export function checkRedisConnection(option: string, connection: unknown): RedisConnection {
  if (isRedis(connection) || isCluster(connection)) return connection;
  // cluster seeds: openConnection checks each
  if (Array.isArray(connection)) return connection as RedisConnection;
  if (typeof connection === 'object' && connection !== null && 'cluster' in connection) return connection as RedisConnection;
  if (typeof connection === 'string') {
    checkUrl(option, connection);
    return connection;
  }
  if (typeof connection === 'object' && connection !== null && !Array.isArray(connection)) {
    checkOptions(option, connection as Record<string, unknown>);
    return connection as RedisConnection;
  }
  return refuse(option, `must be a URL (${SCHEMES}), ioredis options, cluster seeds, or an ioredis Redis or Cluster`, connection === undefined ? 'undefined' : String(connection));
}
