/**
 * `intracom watch <pattern> [--count N] [--json]`: live traffic on the
 * channels matching a glob pattern, decoded: events with their headers,
 * RPC requests and replies with their envelope fields, query envelopes.
 * Ends on Ctrl-C (SIGINT), or after N messages with `--count`.
 *
 * It sees pub/sub traffic only: durable queries (FIRE_AND_FORGET, BROADCAST)
 * travel on streams; `intracom status` shows those. On a cluster, shard
 * channels are found every half second (see watchShardChannels).
 */
import type { Command } from 'commander';
import { Names } from '../../../vars/names';
import { builtinCatalogue } from '../../../vars/RedisVars';
import { ExitCode, connect, interrupted, toJson, type CliIO, type GlobalOptions } from '../context';
import { positiveIntegerOption } from '../parse';
import { watchShardChannels } from '../shardWatch';

/** One decoded message as `watch` reports it. */
export interface WatchedMessage {
  /** When it arrived (ISO 8601). */
  at: string;
  /** The topic (channel without the namespace). */
  channel: string;
  /** `event`, `rpc-request`, `rpc-reply`, `rpc-error`, `rpc-cancel`, `rpc-probe`, `query` or `other`. */
  kind: 'event' | 'rpc-request' | 'rpc-reply' | 'rpc-error' | 'rpc-cancel' | 'rpc-probe' | 'query' | 'other';
  /** The fields shown, by name. */
  fields: Record<string, unknown>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** The variables of the built-in catalogue whose values `watch` never prints, as `<owner>.<name>`. */
const SECRET_VARIABLES = new Set(Object.values(builtinCatalogue.vars).filter((v) => v.secret).map((v) => `${v.owner}.${v.name}`));

/** The shown value of a variable change: a secret variable's value (sent by a client that did not know it was secret) becomes `[redacted]`. */
function redacted(channel: string, payload: unknown): unknown {
  const variable = Names.variableOfTopic(channel);
  if (variable === undefined || !SECRET_VARIABLES.has(`${variable.owner}.${variable.name}`)) return payload;
  if (!isObject(payload) || !('value' in payload)) return payload;
  return { ...payload, value: '[redacted]' };
}

/** Classifies one decoded message; an event batch, or a batch of RPC requests, gives one entry per payload. */
export function classify(message: unknown, channel: string, at: string): WatchedMessage[] {
  const one = (kind: WatchedMessage['kind'], fields: Record<string, unknown>): WatchedMessage[] => [{ at, channel, kind, fields }];
  if (!isObject(message)) return one('other', { value: message });
  if (isObject(message.headers) && typeof message.headers.sourceInstance === 'string' && Array.isArray(message.payloads)) {
    // RPC requests sharing their caller's half: one entry per request
    const from = `${String(message.headers.serviceNameSource)}/${message.headers.sourceInstance}`;
    return message.payloads.map((body) => {
      const { queryId, action, query, timeout_ms } = isObject(body) ? body : ({} as Record<string, unknown>);
      return { at, channel, kind: 'rpc-request' as const, fields: { queryId, from, action, query, timeout_ms } };
    });
  }
  if (isObject(message.headers) && Array.isArray(message.payloads)) {
    const headers = message.headers;
    return message.payloads.map((payload) => ({ at, channel, kind: 'event' as const, fields: { ...headers, payload: redacted(channel, payload) } }));
  }
  if (isObject(message.headers) && 'payload' in message) return one('event', { ...message.headers, payload: redacted(channel, message.payload) });
  if (typeof message.queryId === 'string' && typeof message.type === 'string' && typeof message.state === 'string') {
    const { queryId, type, state, serviceNameSource, serviceNameDest, action, query, result, response, route, timeout_ms, processAttempts } = message;
    return one('query', { queryId, type, state, serviceNameSource, serviceNameDest, action, query, result, response, route, timeout_ms, processAttempts });
  }
  if (typeof message.queryId === 'string' && typeof message.sourceInstance === 'string') {
    const { queryId, serviceNameSource, sourceInstance, action, query, timeout_ms } = message;
    return one('rpc-request', { queryId, from: `${String(serviceNameSource)}/${sourceInstance}`, action, query, timeout_ms });
  }
  if (typeof message.queryId === 'string' && isObject(message.error)) {
    const error = message.error;
    return one('rpc-error', { queryId: message.queryId, instanceId: message.instanceId, error: `${String(error.errorName ?? 'Error')}: ${String(error.message ?? '')}`, fault: message.fault });
  }
  if (typeof message.queryId === 'string' && 'result' in message) return one('rpc-reply', { queryId: message.queryId, result: message.result });
  if (typeof message.cancel === 'string') return one('rpc-cancel', { queryId: message.cancel });
  if ('probe' in message) return one('rpc-probe', {});
  return one('other', { value: message });
}

/** One line of text for a watched message. */
export function formatWatched(entry: WatchedMessage): string {
  const time = entry.at.slice(11, 23);
  const fields = Object.entries(entry.fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `${name}=${typeof value === 'string' ? value : toJson(value)}`)
    .join(' ');
  return `${time} ${entry.channel} ${entry.kind} ${fields}`.trimEnd();
}

/** Registers the command. */
export function registerWatch(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('watch')
    .description('print live decoded traffic on the channels matching a glob pattern (events, RPC requests and replies); Ctrl-C ends it')
    .argument('<pattern>', 'glob pattern of topics, such as "module.*.events", "audit.*" or "*"')
    .option('-n, --count <n>', 'stop after this many messages', positiveIntegerOption('--count'))
    .option('--json', 'one JSON object per message instead of text')
    .action(async (pattern: string, options: { count?: number; json?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const connection = await connect(globals, { rpc: false });
      const stop = interrupted();
      let seen = 0;
      let finish: () => void = () => undefined;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      try {
        const { client } = connection;
        const show = (message: unknown, channel: string): void => {
          if (options.count !== undefined && seen >= options.count) return;
          for (const entry of classify(message, client.names.topicOf(channel), new Date().toISOString())) {
            if (options.count !== undefined && seen >= options.count) break;
            seen += 1;
            io.stdout.write(`${options.json ? toJson(entry) : formatWatched(entry)}\n`);
          }
          if (options.count !== undefined && seen >= options.count) finish();
        };
        const unsubscribePattern = await client.route.psubscribe(client.names.channel(pattern), show);
        // on a cluster, shard channels are invisible to patterns: found and subscribed one by one
        const unsubscribeShards = await watchShardChannels(client, pattern, show);
        const unsubscribe = async () => {
          await Promise.all([unsubscribePattern(), unsubscribeShards?.()]);
        };
        io.stderr.write(`watching "${pattern}"${globals.namespace ? ` in namespace "${globals.namespace}"` : ''}${options.count === undefined ? ' (Ctrl-C to stop)' : ` until ${options.count} messages`}\n`);
        await Promise.race([finished, stop.promise]);
        await unsubscribe();
      } finally {
        stop.dispose();
        await connection.close();
      }
      done(ExitCode.OK);
    });
}
