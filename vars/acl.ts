/**
 * Redis 7 ACL rules for the user of one service, built from what the library
 * sends: the commands of each capability (including every command its Lua
 * scripts call, which Redis checks against the user too), the key family and
 * the channels. `intracom acl` prints them; docs/operations.md shows them.
 *
 * The key and channel layout does not yet separate one service from another
 * (see docs/security.md), so the rules grant the namespace's whole `ic:` key
 * family and its channels: they keep a service to intracom's commands and to
 * its namespace, not away from other services of the same namespace.
 */
import { assertNamespace } from './names';
import { describeValue } from './describe';
import { ValidationError } from './ValidationError';

/** What a service uses; each adds its commands. */
export type AclCapability = 'variables' | 'events' | 'registry' | 'rpc' | 'queues' | 'mutex' | 'inspect';

/** Every capability, in the order the rules list them. */
export const ACL_CAPABILITIES: readonly AclCapability[] = ['variables', 'events', 'registry', 'rpc', 'queues', 'mutex', 'inspect'];

/**
 * The commands of each capability. Lower case, with subcommands as Redis 7
 * names them (`xgroup|create`). `connection` is always granted.
 */
export const ACL_COMMANDS: Readonly<Record<AclCapability | 'connection', readonly string[]>> = Object.freeze({
  /** ioredis's handshake (HELLO) and ready check (INFO), PING and QUIT. */
  connection: ['hello', 'info', 'ping', 'quit', 'select'],
  /** get/set/delete/increment, TTLs, change events (MULTI with PUBLISH), watch. */
  variables: ['get', 'set', 'del', 'exists', 'incrby', 'pexpire', 'multi', 'exec', 'publish', 'subscribe', 'unsubscribe'],
  /** publish and (pattern) subscriptions. */
  events: ['publish', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe'],
  /** The instance registry's scripts: TIME, ZADD, ZRANGEBYSCORE, ZREMRANGEBYSCORE, ZREM, HSET, HDEL, HMGET. */
  registry: ['evalsha', 'eval', 'time', 'zadd', 'zrangebyscore', 'zremrangebyscore', 'zrem', 'hset', 'hdel', 'hmget'],
  /** Requests and replies over pub/sub. */
  rpc: ['publish', 'subscribe', 'unsubscribe', 'pubsub|numsub'],
  /** FIRE_AND_FORGET, BROADCAST, ASYNC, SYNC: streams, consumer groups, completion records, claims (a hash per scope), dead letters. */
  queues: [
    'xadd', 'xreadgroup', 'xack', 'xclaim', 'xpending', 'xinfo|groups', 'xgroup|create', 'xgroup|destroy', 'xlen', 'xrange', 'xdel', 'xtrim',
    'hset', 'hget', 'hmget', 'hdel', 'hexists', 'exists', 'set', 'get', 'del', 'pexpire', 'incrby', 'evalsha', 'eval', 'time',
  ],
  /**
   * P/V, waiting acquire and hand-over, extension, fencing: SET NX PX, and scripts with GET, DEL, EXISTS,
   * PTTL, PEXPIRE, INCR, TIME, the wait queue (ZADD, ZRANGE, ZREM, HSET, HGET, HDEL) and the hand-over
   * notice (PUBSUB NUMSUB, PUBLISH); waiters SUBSCRIBE to their wake channel (on a cluster: PUBSUB
   * SHARDNUMSUB, SPUBLISH, SSUBSCRIBE and SUNSUBSCRIBE, one channel per mutex in its lock's slot).
   */
  mutex: [
    'set', 'get', 'del', 'exists', 'pttl', 'pexpire', 'incr', 'time', 'zadd', 'zrange', 'zrem', 'hset', 'hget', 'hdel',
    'evalsha', 'eval', 'publish', 'pubsub|numsub', 'subscribe', 'unsubscribe',
    'spublish', 'pubsub|shardnumsub', 'ssubscribe', 'sunsubscribe',
  ],
  /** The CLI's `status` and `dead-letters`: discovery with SCAN. */
  inspect: ['scan', 'pttl'],
});

/** Options of {@link aclRules}. */
export interface AclOptions {
  /**
   * The namespace the service runs in; its keys and channels are the only ones granted.
   * @default ''
   */
  namespace?: string;
  /**
   * What the service uses.
   * @default every capability but `inspect`
   */
  capabilities?: readonly AclCapability[];
  /**
   * The glob patterns the service subscribes to with `psubscribe` (namespace-free,
   * such as `audit.*`). Redis 7 matches a PSUBSCRIBE pattern against `&` rules
   * literally, so each is granted as written.
   * @default []
   */
  patterns?: readonly string[];
}

/** The rules of one user, as `ACL SETUSER` arguments after the user name (no password: add `>password` or `#sha256`). */
export interface AclRules {
  /** `+command` rules, sorted. */
  readonly commands: readonly string[];
  /** `~pattern` key rules. */
  readonly keys: readonly string[];
  /** `&pattern` channel rules. */
  readonly channels: readonly string[];
  /** Every rule, in `ACL SETUSER` order: `resetkeys resetchannels -@all`, then commands, keys and channels. */
  readonly all: readonly string[];
}

/** The ACL rules of the user of one service. */
export function aclRules(options: AclOptions = {}): AclRules {
  const namespace = options.namespace ?? '';
  assertNamespace(namespace);
  const capabilities = options.capabilities ?? ACL_CAPABILITIES.filter((capability) => capability !== 'inspect');
  const commands = new Set<string>(ACL_COMMANDS.connection);
  for (const capability of capabilities) {
    const list = ACL_COMMANDS[capability];
    if (list === undefined) throw new ValidationError(`capabilities must be among ${ACL_CAPABILITIES.join(', ')}; received ${describeValue(capability)}`);
    for (const command of list) commands.add(command);
  }
  const prefix = namespace === '' ? '' : `${namespace}:`;
  const commandRules = [...commands].sort().map((command) => `+${command}`);
  const keys = [`~${prefix}ic:*`];
  // A PSUBSCRIBE pattern is matched against `&` rules literally: each pattern the service uses needs its own rule.
  const channels = [...new Set([`&${prefix}*`, ...(options.patterns ?? []).map((pattern) => `&${prefix}${pattern}`)])];
  return Object.freeze({ commands: commandRules, keys, channels, all: ['resetkeys', 'resetchannels', '-@all', ...commandRules, ...keys, ...channels] });
}

/** One `ACL SETUSER` line for `user` (the password as `>password` is left for the operator to add, or given here). */
export function aclSetUserLine(user: string, options: AclOptions & { password?: string } = {}): string {
  if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(user)) throw new ValidationError(`user must be 1-128 of letters, digits, "_", ".", "@" and "-"; received ${describeValue(user)}`);
  const secret = options.password === undefined || options.password === '' ? '<password>' : options.password;
  return ['ACL', 'SETUSER', user, 'reset', 'on', `>${secret}`, ...aclRules(options).all].join(' ');
}
