/**
 * What every command of the `intracom` CLI shares: the global options, the
 * exit codes, the connection to Redis (with a clear message and exit code 3
 * when it cannot be reached) and the mapping of intracom's error classes to
 * exit codes.
 */
import type { Logger } from 'pino';
import { RedisClient } from '../client/RedisClient';
import { CancelledError } from '../errors/CancelledError';
import { ConnectionError } from '../errors/ConnectionError';
import { TopologyError } from '../errors/TopologyError';
import { ConnectionLostError } from '../errors/ConnectionLostError';
import { NoHandlerError } from '../errors/NoHandlerError';
import { NoServiceError } from '../errors/NoServiceError';
import { RemoteError } from '../errors/RemoteError';
import { ServiceBusyError } from '../errors/ServiceBusyError';
import { TimeoutError } from '../errors/TimeoutError';
import { ValidationError } from '../errors/ValidationError';
import { RedisRPCClient } from '../rpc/RedisRPCClient';
import { defaultLogger } from '../log/logger';
import { connectionOf, type ConnectionFlags } from './connection';

/** The exit codes of the CLI (documented in docs/cli.md). */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** The operation failed for a reason without a code of its own. */
  FAILED: 1,
  /** Bad arguments or options (usage error), or a value refused as invalid (ValidationError). */
  USAGE: 2,
  /** Redis could not be reached. */
  UNREACHABLE: 3,
  /** TimeoutError: no answer within the timeout. */
  TIMEOUT: 4,
  /** NoHandlerError: the service does not expose that function or action. */
  NO_HANDLER: 5,
  /** NoServiceError: no live instance serves the target. */
  NO_SERVICE: 6,
  /** RemoteError: the remote handler threw. */
  REMOTE: 7,
  /** ConnectionLostError: the connection, or the instance handling the call, went away mid-call. */
  CONNECTION_LOST: 8,
  /** CancelledError: the call was cancelled (Ctrl-C). */
  CANCELLED: 9,
  /** ServiceBusyError: every instance was at its limit. */
  BUSY: 10,
} as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error the CLI reports as one line (no stack) with its own exit code.
 * Its name is the intracom error class it stands for, so that the line keeps
 * the documented form `intracom: ClassName: message`: ValidationError for
 * refused input (exit 2), ConnectionError for an unreachable Redis (exit 3).
 */
export class CliError extends Error {
  constructor(
    message: string,
    /** The process exit code. */
    readonly exitCode: ExitCodeValue,
    /** The class name printed before the message. */
    className: string = exitCode === ExitCode.USAGE ? 'ValidationError' : exitCode === ExitCode.UNREACHABLE ? 'ConnectionError' : 'Error',
  ) {
    super(message);
    this.name = className;
  }
}

/** The options every command accepts. */
export interface GlobalOptions extends ConnectionFlags {
  /** Namespace prefix of keys and channels. */
  namespace: string;
  /** Timeout of a call, a query or the connection, in ms. */
  timeout: number;
}

/** Where the CLI writes; tests and embedding callers can replace it. */
export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The default Redis URL: `REDIS_URL`, else the local default port. */
export function defaultRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A URL as it may be shown: the password replaced by `***`. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** The exit code of an error: its class decides (see {@link ExitCode}). */
export function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof ConnectionError) return ExitCode.UNREACHABLE;
  if (error instanceof TimeoutError) return ExitCode.TIMEOUT;
  if (error instanceof NoHandlerError) return ExitCode.NO_HANDLER;
  if (error instanceof NoServiceError) return ExitCode.NO_SERVICE;
  if (error instanceof RemoteError) return ExitCode.REMOTE;
  if (error instanceof ConnectionLostError) return ExitCode.CONNECTION_LOST;
  if (error instanceof CancelledError) return ExitCode.CANCELLED;
  if (error instanceof ServiceBusyError) return ExitCode.BUSY;
  if (error instanceof ValidationError) return ExitCode.USAGE;
  return ExitCode.FAILED;
}

/** The one line the CLI prints for an error: `ClassName: message`. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `Error: ${String(error)}`;
}

/**
 * Commander's own usage errors (`error: unknown option '--x'`) in the CLI's
 * form: `intracom: ValidationError: unknown option '--x'`.
 */
export function usageLine(text: string): string {
  return text.replace(/^error: /, 'intracom: ValidationError: ');
}

/** The logger of the CLI's clients: silent unless `INTRACOM_LOG_LEVEL` says otherwise, on stderr. */
function cliLogger(): Logger {
  return defaultLogger('silent', 'intracom-cli');
}

/** The service key under which the CLI appears in the registry while it runs. */
export const CLI_SERVICE = 'intracom-cli';

/** The connection of one command, closed by {@link Connection.close}. */
export interface Connection {
  readonly client: RedisClient;
  /** RPC over the same client (connected only when asked for). */
  readonly rpc: RedisRPCClient;
  close(): Promise<void>;
}

/**
 * Connects to Redis as the service `intracom-cli` (durable queues are never
 * consumed by it). With `rpc`, the RPC client is connected too (it then takes
 * replies). Rejects with a CliError of exit code 3 naming the URL when Redis
 * cannot be reached within the timeout.
 */
export async function connect(options: GlobalOptions, { rpc: withRpc }: { rpc: boolean }): Promise<Connection> {
  let client: RedisClient;
  let rpc: RedisRPCClient;
  try {
    client = new RedisClient({ service: CLI_SERVICE, redis: connectionOf(options), namespace: options.namespace, logger: cliLogger() });
    rpc = new RedisRPCClient({ client, timeoutMs: options.timeout, queues: { consume: false }, closeTimeoutMs: 1000, queryGraceMs: 0 });
  } catch (error) {
    throw new CliError(`invalid option: ${error instanceof Error ? error.message : String(error)}`, ExitCode.USAGE);
  }
  client.on('error', () => undefined); // reported through the failing command instead
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliError(`cannot reach Redis at ${displayUrl(options.redis)}: no answer within ${options.timeout} ms`, ExitCode.UNREACHABLE)), options.timeout);
  });
  try {
    await Promise.race([withRpc ? rpc.connect() : client.connect(), deadline]);
  } catch (error) {
    void rpc.close().catch(() => undefined);
    if (error instanceof CliError) throw error;
    // Redis answered, but is not the deployment the URL names (a cluster node behind redis://): say so, not "unreachable"
    if (error instanceof TopologyError) throw new CliError(`Redis at ${displayUrl(options.redis)}: ${error.message.replace(/^could not connect to Redis at [^:]+:\d+: /, '')}`, ExitCode.UNREACHABLE, 'TopologyError');
    const reason = error instanceof ConnectionError ? error.message.replace(/^could not connect to Redis at [^:]+:\d+: /, '') : describeError(error);
    throw new CliError(`cannot reach Redis at ${displayUrl(options.redis)}: ${reason}`, ExitCode.UNREACHABLE);
  } finally {
    clearTimeout(timer);
  }
  return {
    client,
    rpc,
    async close() {
      await rpc.close();
      await client.close();
    },
  };
}

/** Parses a JSON command-line argument, or fails with exit code 2 naming it. */
export function parseJsonArgument(name: string, text: string | undefined, fallback: unknown): unknown {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${name} must be JSON; received ${JSON.stringify(text)} (${(error as Error).message})`, ExitCode.USAGE);
  }
}

/** JSON text of any value msgpack can carry: bigint as `"<n>n"`, Buffer as `{ type: 'Buffer', base64 }`, undefined as `null` (JSON has no undefined). */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    function replacer(this: unknown, key: string, item: unknown) {
      const original = (this as Record<string, unknown>)[key];
      if (typeof item === 'bigint') return `${item}n`;
      if (Buffer.isBuffer(original)) return { type: 'Buffer', base64: original.toString('base64') };
      return item;
    },
    indent,
  ) ?? 'null';
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening for them). */
export function interrupted(): { promise: Promise<string>; dispose(): void } {
  let dispose: () => void = () => undefined;
  const promise = new Promise<string>((resolve) => {
    const onSignal = (signal: string) => {
      dispose();
      resolve(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    dispose = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  });
  return { promise, dispose };
}
