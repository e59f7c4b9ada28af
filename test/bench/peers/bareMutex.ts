/**
 * The bare systems of `mutex-contended` (see the scenario): intracom's mutex
 * protocol driven by the least JavaScript (`bare-scripts`), and a blocking
 * variant of it evaluated for the hand-over (`bare-blocking`). No options,
 * deadlines, signals or records: what is left is the protocol's own cost.
 * Keys and channels come from `Names`, as intracom's own.
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { Names } from '../../../vars/names';
import { acquireScript, releaseScript } from '../../../src/mutex/scripts';

/** One critical section: resolves with the function that leaves it. */
export type Enter = () => Promise<() => Promise<void>>;

export interface BareOptions {
  /** The mutex contended for. */
  mutexId: string;
  /** Lease of each lock, ms. @default 10000 */
  leaseMs?: number;
  /** Longest pause between a waiter's own attempts, ms (50 to this, as intracom's defaults). @default 100 */
  retryMs?: number;
}

const NODE_ID = 'node';

/** What both bare systems share: keys, wake channel, one token per section, the lease's record. */
function bareWaiter(namespace: string, options: BareOptions) {
  const names = new Names(namespace);
  const { mutexId } = options;
  const waiterId = randomBytes(9).toString('base64url');
  let counter = 0;
  return {
    mutexId,
    keys: [names.mutex(mutexId), names.mutexFence(mutexId), names.mutexQueue(mutexId), names.mutexWaiters(mutexId)],
    channel: names.mutexWake(waiterId, mutexId),
    /** The waiter's list of `bare-blocking`, in the lock's slot. */
    list: `${names.mutex(mutexId)}:wake:${waiterId}`,
    leaseMs: options.leaseMs ?? 10_000,
    /** A pause of retryMs / 2 to retryMs, in ms. */
    pauseMs: () => ((options.retryMs ?? 100) / 2) * (1 + Math.random()),
    /** Liveness of a queue entry, ms, as intracom's: 1000 + 2 x the longest pause. */
    aliveMs: 1000 + 2 * (options.retryMs ?? 100),
    nextToken: () => waiterId + (++counter).toString(36),
  };
}

/** intracom's own scripts and wake notices, bare: what the library's client-side work costs on top of its protocol. */
export async function bareScripts(redis: Redis, subscriber: Redis, namespace: string, options: BareOptions = { mutexId: 'bare-scripts' }): Promise<Enter> {
  const waiter = bareWaiter(namespace, options);
  const { keys, channel, mutexId, leaseMs } = waiter;
  await subscriber.ssubscribe(channel);
  await redis.script('LOAD', acquireScript.source);
  await redis.script('LOAD', releaseScript.source);
  let waiting: { token: string; resolve: (value: string | null) => void } | null = null;
  subscriber.on('smessage', (_channel: string, message: string) => {
    const value = message.slice(message.indexOf('|') + 1);
    if (waiting && value.startsWith(waiting.token + '|')) waiting.resolve(value);
  });
  return async () => {
    const token = waiter.nextToken();
    let value: string | null = null;
    while (value === null) {
      const noticed = new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => resolve(null), waiter.pauseMs());
        waiting = {
          token,
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v);
          },
        };
      });
      const takenAt = Date.now();
      const reply = (await redis.evalsha(acquireScript.sha, 4, ...keys, token, takenAt, leaseMs, NODE_ID, mutexId, channel, waiter.aliveMs)) as [number, number | string];
      if (reply[0] === 1) value = `${token}|${reply[1]}|${takenAt}|${leaseMs}|${NODE_ID}`;
      else if (reply[0] === 2) value = reply[1] as string;
      else value = await noticed;
      waiting?.resolve(null);
      waiting = null;
    }
    const held = value;
    return async () => {
      if ((await redis.evalsha(releaseScript.sha, 4, ...keys, held, mutexId, channel)) === 0) throw new Error('bare-scripts release failed');
    };
  };
}

/** `text` with `from` replaced; throws when `from` is not in it (intracom's scripts changed: this variant must follow). */
function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`bare-blocking: intracom's mutex scripts no longer contain ${JSON.stringify(from.slice(0, 60))}`);
  return text.replace(from, to);
}

/**
 * The hand-over of `bare-blocking`: the live first waiter is handed the lock
 * by an LPUSH to its own list (named after its wake channel in the waiters
 * hash), not by SPUBLISH; its liveness is still its wake channel's subscriber.
 */
const BLOCKING_HAND_OVER = [
  ["redis.call('SPUBLISH', channel, mutexId .. '|' .. value)", "local list = string.sub(channel, string.find(channel, '|', 1, true) + 1); redis.call('LPUSH', list, value); redis.call('PEXPIRE', list, 60000)"],
  ['local channel = string.sub(info, bar + 1)', "local channel = string.sub(info, bar + 1); local live = string.sub(channel, 1, string.find(channel, '|', 1, true) - 1)"],
  ["redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2] > 0", "redis.call('PUBSUB', 'SHARDNUMSUB', live)[2] > 0"],
].reduce((text, [from, to]) => edit(text, from, to), acquireScript.source.slice(acquireScript.source.indexOf('local function handOver'), acquireScript.source.indexOf('local token, timeout')));

/** The attempt of `bare-blocking`: the outcome, taken or handed, is also pushed to the waiter's list ARGV[8]. */
export const BLOCKING_ACQUIRE = `-- KEYS as acquire; ARGV as acquire, ARGV[6] '<channel>|<list>', ARGV[8] the waiter's list
${BLOCKING_HAND_OVER}
` + [
  ["if string.sub(value, 1, #token + 1) == token .. '|' then return {2, value} end", "if string.sub(value, 1, #token + 1) == token .. '|' then redis.call('LPUSH', ARGV[8], value) return {2, value} end"],
  ['if handed == entry then return {2, mine} end', "if handed == entry then redis.call('LPUSH', ARGV[8], mine) return {2, mine} end"],
  [
    "redis.call('SET', KEYS[1], token .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. timeout .. '|' .. nodeId, 'PX', timeout)\nreturn {1, fence}",
    "local mine = token .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. timeout .. '|' .. nodeId\nredis.call('SET', KEYS[1], mine, 'PX', timeout)\nredis.call('LPUSH', ARGV[8], mine)\nreturn {1, fence}",
  ],
].reduce((text, [from, to]) => edit(text, from, to), acquireScript.source.slice(acquireScript.source.indexOf('local token, timeout')));

/** The release of `bare-blocking`. */
export const BLOCKING_RELEASE = `-- KEYS as release; ARGV[1] value, ARGV[2] mutexId
${BLOCKING_HAND_OVER}
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local handed = handOver(ARGV[2], false, '')
if not handed then redis.call('DEL', KEYS[1]) end
return 1`;

/** One command in RESP, written past ioredis so that it expects no reply. */
function resp(args: (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const text = String(arg);
    out += `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
  }
  return out;
}

const REPLY_SKIP = resp(['CLIENT', 'REPLY', 'SKIP']);

/**
 * Each attempt is one write on `blocker` (a connection of its own): CLIENT
 * REPLY SKIP, the attempt (no reply), and BLPOP on the waiter's list, which
 * answers when the attempt took the lock, when a release hands it over, or
 * after the retry pause.
 */
export async function bareBlocking(redis: Redis, blocker: Redis, subscriber: Redis, namespace: string, options: BareOptions = { mutexId: 'bare-blocking' }): Promise<Enter> {
  const waiter = bareWaiter(namespace, options);
  const { keys, channel, list, mutexId, leaseMs } = waiter;
  await subscriber.ssubscribe(channel);
  const acquireSha = (await redis.script('LOAD', BLOCKING_ACQUIRE)) as string;
  const releaseSha = (await redis.script('LOAD', BLOCKING_RELEASE)) as string;
  await blocker.ping();
  const stream = (blocker as unknown as { stream: { write(text: string): void } }).stream;
  return async () => {
    const token = waiter.nextToken();
    let value: string | null = null;
    while (value === null) {
      stream.write(REPLY_SKIP + resp(['EVALSHA', acquireSha, 4, ...keys, token, Date.now(), leaseMs, NODE_ID, mutexId, `${channel}|${list}`, waiter.aliveMs, list]));
      const popped = await blocker.blpop(list, waiter.pauseMs() / 1000);
      if (popped !== null && popped[1].startsWith(token + '|')) value = popped[1];
    }
    const held = value;
    return async () => {
      if ((await redis.evalsha(releaseSha, 4, ...keys, held, mutexId)) === 0) throw new Error('bare-blocking release failed');
    };
  };
}
