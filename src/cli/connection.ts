/**
 * How the CLI's global options become the Redis connection its clients use:
 * the `--redis` URL as it is, or, when `--user`, a password in
 * `INTRACOM_REDIS_PASSWORD` or a `--tls-*` file is given, ioredis options
 * built from the URL with those added (a password is never taken from the
 * command line, where `ps` would show it).
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';

/** The connection options of the CLI (see docs/cli.md). */
export interface ConnectionFlags {
  /** Redis URL (`redis://` or `rediss://`). */
  redis: string;
  /** ACL user name (overrides the URL's). */
  user?: string;
  /** PEM file of the CA that signed the server's certificate (implies TLS). */
  tlsCa?: string;
  /** PEM file of the client certificate, for servers that require one (mutual TLS). */
  tlsCert?: string;
  /** PEM file of the client certificate's private key. */
  tlsKey?: string;
}

/** The environment variable the CLI reads a Redis password from. */
export const PASSWORD_VARIABLE = 'INTRACOM_REDIS_PASSWORD';

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(`${flag} ${JSON.stringify(file)} cannot be read: ${(error as Error).message}`);
  }
}

/**
 * The connection for `flags`: the URL string when no flag adds to it, else
 * ioredis options. Throws an Error naming the flag for an unreadable file, a
 * key without a certificate or a URL that is not `redis://` or `rediss://`.
 */
export function connectionOf(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): string | RedisOptions {
  const password = env[PASSWORD_VARIABLE];
  const tls = flags.tlsCa !== undefined || flags.tlsCert !== undefined || flags.tlsKey !== undefined;
  if (!tls && flags.user === undefined && (password === undefined || password === '')) return flags.redis;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  let url: URL;
  try {
    url = new URL(flags.redis);
  } catch {
    throw new Error(`--redis must be a redis:// or rediss:// URL; received ${JSON.stringify(flags.redis)}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`--redis must be a redis:// or rediss:// URL; received ${JSON.stringify(flags.redis)}`);
  const options: RedisOptions = { host: url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1', port: url.port === '' ? 6379 : Number(url.port) };
  const db = url.pathname.replace(/^\//, '');
  if (db !== '') options.db = Number(db);
  const username = flags.user ?? (url.username === '' ? undefined : decodeURIComponent(url.username));
  if (username !== undefined) options.username = username;
  if (password !== undefined && password !== '') options.password = password;
  else if (url.password !== '') options.password = decodeURIComponent(url.password);
  if (tls || url.protocol === 'rediss:') {
    options.tls = {
      ...(flags.tlsCa === undefined ? {} : { ca: readPem('--tls-ca', flags.tlsCa) }),
      ...(flags.tlsCert === undefined ? {} : { cert: readPem('--tls-cert', flags.tlsCert) }),
      ...(flags.tlsKey === undefined ? {} : { key: readPem('--tls-key', flags.tlsKey) }),
    };
  }
  return options;
}
