/**
 * Redis 7 ACL rules for the user of one service, built from what the library
 * sends: the commands of each capability (including every command its Lua
 * scripts call, which Redis checks against the user too), the keys and the
 * channels. `intracom acl` prints them; docs/security.md shows them.
 *
 * Two levels:
 * - {@link serviceAcl}: least privilege from a deployment (the catalogue, and
 *   per service what it reads, calls, sends to, serves and locks). Keys with
 *   `%R~` where the service only reads and `%W~` where it only writes; the
 *   channels of its own calls and replies only. This is what isolates one
 *   service from another (docs/security.md, threat model).
 * - {@link aclRules}: the namespace's whole `ic:` key family and its
 *   channels: a service kept to intracom's commands and its namespace, not
 *   away from the other services of that namespace (tools such as the CLI).
 */
import { assertNamespace, Names } from './names';
import { assertName, assertSegment } from './define';
import type { Catalogue, VarDefinition } from './types';
import type { FunctionCatalogue } from './functions';
import { describeValue } from './describe';
import { ValidationError } from './ValidationError';

/** What a service uses; each adds its commands. */
export type AclCapability = 'variables' | 'events' | 'registry' | 'rpc' | 'queues' | 'mutex' | 'inspect' | 'cluster';

/** Every capability, in the order the rules list them. */
export const ACL_CAPABILITIES: readonly AclCapability[] = ['variables', 'events', 'registry', 'rpc', 'queues', 'mutex', 'inspect', 'cluster'];

/**
 * The commands of each capability. Lower case, with subcommands as Redis 7
 * names them (`xgroup|create`). `connection` is always granted.
 */
export const ACL_COMMANDS: Readonly<Record<AclCapability | 'connection', readonly string[]>> = Object.freeze({
  /** ioredis's handshake (HELLO) and ready check (INFO), PING and QUIT. */
  connection: ['hello', 'info', 'ping', 'quit', 'select'],
  /** get/set/delete, increment (a script: INCRBY, GET, PEXPIRE), TTLs, change events (MULTI with PUBLISH), watch. */
  variables: ['get', 'set', 'del', 'exists', 'incrby', 'pexpire', 'evalsha', 'eval', 'multi', 'exec', 'publish', 'subscribe', 'unsubscribe'],
  /** publish and (pattern) subscriptions. */
  events: ['publish', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe'],
  /** The instance registry's scripts: TIME, ZADD, ZRANGEBYSCORE, ZREMRANGEBYSCORE, ZREM, ZSCORE, HSET, HGET, HDEL, HMGET (ZSCORE and HGET: the id check at connect); reading it with EVALSHA_RO/EVAL_RO. */
  registry: ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'time', 'zadd', 'zrangebyscore', 'zremrangebyscore', 'zrem', 'zscore', 'hset', 'hget', 'hdel', 'hmget'],
  /** Requests and replies over pub/sub. */
  rpc: ['publish', 'subscribe', 'unsubscribe', 'pubsub|numsub'],
  /** FIRE_AND_FORGET, BROADCAST, ASYNC, SYNC: streams, consumer groups, completion records, claims (a hash per scope), dead letters. */
  queues: [
    'xadd', 'xreadgroup', 'xack', 'xclaim', 'xpending', 'xinfo|groups', 'xgroup|create', 'xgroup|destroy', 'xlen', 'xrange', 'xdel', 'xtrim',
    'hset', 'hget', 'hmget', 'hdel', 'hexists', 'exists', 'set', 'get', 'del', 'pexpire', 'incrby', 'evalsha', 'eval', 'time', 'wait',
  ],
  /**
   * P/V, waiting acquire and hand-over, extension, fencing: SET NX PX, and scripts with GET, DEL, EXISTS,
   * PTTL, PEXPIRE, INCR, TIME, the wait queue (ZADD, ZPOPMIN, ZREM, HSET, HGET, HDEL) and the hand-over
   * notice (PUBSUB SHARDNUMSUB, SPUBLISH); waiters SSUBSCRIBE and SUNSUBSCRIBE to their wake channel
   * (sharded pub/sub, one channel per mutex in its lock's slot, on one server as on a cluster).
   */
  mutex: [
    'set', 'get', 'del', 'exists', 'pttl', 'pexpire', 'incr', 'time', 'zadd', 'zpopmin', 'zrem', 'hset', 'hget', 'hdel',
    'evalsha', 'eval', 'spublish', 'pubsub|shardnumsub', 'ssubscribe', 'sunsubscribe',
  ],
  /** The CLI's `status` and `dead-letters`: discovery with SCAN. */
  inspect: ['scan', 'pttl'],
  /**
   * A Redis Cluster: slot discovery and the ready check (CLUSTER SLOTS, SHARDS, INFO), redirections (ASKING),
   * reads from replicas (READONLY), sharded pub/sub and its subscriber count (in a script), WAIT for durability.
   */
  cluster: ['cluster|slots', 'cluster|shards', 'cluster|info', 'asking', 'readonly', 'spublish', 'ssubscribe', 'sunsubscribe', 'pubsub|shardnumsub', 'wait', 'evalsha', 'eval'],
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
  /**
   * Redis 7 selectors, such as `(%W~ic:{calc}:queries %W~ic:{calc}:broadcast +xadd)`: commands allowed on
   * these keys only. A sender may append to another service's streams and do nothing else there (write
   * access alone would also allow DEL, XACK, XCLAIM, XGROUP DESTROY).
   */
  readonly selectors: readonly string[];
  /** Every rule, in `ACL SETUSER` order: `resetkeys resetchannels -@all`, then commands, keys, channels and selectors. */
  readonly all: readonly string[];
}

/** The ACL rules of the user of one service. */
export function aclRules(options: AclOptions = {}): AclRules {
  const namespace = options.namespace ?? '';
  assertNamespace(namespace);
  const capabilities = options.capabilities ?? ACL_CAPABILITIES.filter((capability) => capability !== 'inspect' && capability !== 'cluster');
  const prefix = namespace === '' ? '' : `${namespace}:`;
  const keys = [`~${prefix}ic:*`];
  // A PSUBSCRIBE pattern is matched against `&` rules literally: each pattern the service uses needs its own rule.
  const channels = [...new Set([`&${prefix}*`, ...(options.patterns ?? []).map((pattern) => `&${prefix}${pattern}`)])];
  return rulesOf(commandsOf(capabilities), keys, channels);
}

function commandsOf(capabilities: Iterable<AclCapability>): string[] {
  const commands = new Set<string>(ACL_COMMANDS.connection);
  for (const capability of capabilities) {
    const list = ACL_COMMANDS[capability];
    if (list === undefined) throw new ValidationError(`capabilities must be among ${ACL_CAPABILITIES.join(', ')}; received ${describeValue(capability)}`);
    for (const command of list) commands.add(command);
  }
  return [...commands].sort().map((command) => `+${command}`);
}

function rulesOf(commands: string[], keys: string[], channels: string[], selectors: string[] = []): AclRules {
  return Object.freeze({ commands, keys, channels, selectors, all: ['resetkeys', 'resetchannels', '-@all', ...commands, ...keys, ...channels, ...selectors] });
}

// ---- least privilege, per service ----

/** A variable a service reads: its declaration, or `owner/name` (then both the plain and the keyed form are granted). */
export type VarRef = VarDefinition | string;
/** A service or module a service calls: a service key, or the declaration of its functions. */
export type TargetRef = string | FunctionCatalogue;

/** What one service does, beyond what the catalogue says (it owns its variables; topics name their publishers and subscribers). */
export interface ServicePlan {
  /**
   * Variables of other services it reads (`get`, `watch`): read-only keys (`%R~`) and their change channels.
   * @default []
   */
  reads?: readonly VarRef[];
  /**
   * Services and modules it calls with `call`/`callService`/`sendSync`/`sendAsync`: it reads their
   * registry (`%R~`), publishes on its own request channel `service.{<target>}.rpc.*.from.{<service>}` and reads its own
   * reply channel `intracom.rpc.reply.{<service>}.*.from.{<target>}`. Each target must name it among its
   * callers ({@link callersOf} gives the `callers` option).
   * @default []
   */
  calls?: readonly TargetRef[];
  /**
   * Services it sends FIRE_AND_FORGET and BROADCAST queries to: their streams write-only (`%W~`: XADD needs write alone).
   * @default []
   */
  sends?: readonly string[];
  /**
   * Modules it serves besides its own service (`expose` on `module.<name>.rpc`).
   * @default []
   */
  modules?: readonly string[];
  /**
   * Mutex ids it takes.
   * @default []
   */
  mutexes?: readonly string[];
  /**
   * Topics it publishes on beyond those the catalogue names it a publisher of.
   * @default []
   */
  publishes?: readonly string[];
  /**
   * Topics it subscribes to beyond those the catalogue names it a subscriber of.
   * @default []
   */
  subscribes?: readonly string[];
  /**
   * Glob patterns it `psubscribe`s to; Redis 7 matches a pattern against `&` rules literally, so each is granted as written.
   * @default []
   */
  patterns?: readonly string[];
  /**
   * Discovery with SCAN (`RedisMutex.list`, the CLI's `status`). Redis does not filter SCAN by key rules:
   * the user then sees the names (not the values) of every key of the server.
   * @default false
   */
  inspect?: boolean;
}

/** A deployment: the catalogue and what each service does. */
export interface AclDeployment {
  /**
   * The namespace the services run in.
   * @default ''
   */
  namespace?: string;
  /**
   * Redis Cluster: channels carry hash tags (the route's `shardChannels`) and the cluster commands are granted.
   * @default false
   */
  cluster?: boolean;
  /**
   * Variables (each owned by one service) and topics (with publishers and subscribers).
   * @default no catalogue
   */
  catalogue?: Catalogue;
  /** Every service, by service key. */
  services: Readonly<Record<string, ServicePlan>>;
}

function targetTopic(target: TargetRef): { name: string; topic: string } {
  if (typeof target === 'string') {
    assertName('calls entry', target);
    return { name: target, topic: `service.${target}.rpc` };
  }
  // a hand-made declaration is checked as defineFunctions would: its name and the topic it implies
  assertName('calls entry name', target?.name);
  if (target.topic !== `service.${target.name}.rpc` && target.topic !== `module.${target.name}.rpc`) {
    throw new ValidationError(`calls entry topic must be service.<name>.rpc or module.<name>.rpc of its name ${JSON.stringify(target.name)}; received ${describeValue(target.topic)}`);
  }
  return { name: target.name, topic: target.topic };
}

/** A mutex id, or a glob of them (`m*`): no brace, which would end the `{mutex:<id>}` tag of its keys and channels early. */
const MUTEX_PATTERN = /^[A-Za-z0-9_.:*?[\]^\\-]{1,200}$/;

/** The services a target (a service key or module name) must accept as callers: its `callers` option under the generated ACLs. */
export function callersOf(deployment: AclDeployment, target: string): string[] {
  const callers = new Set<string>();
  for (const [service, plan] of Object.entries(deployment.services)) {
    if ((plan.calls ?? []).some((called) => targetTopic(called).name === target)) callers.add(service);
  }
  return [...callers].sort();
}

/** A topic template's `<param>` placeholders as `*`. */
function topicPattern(topic: string): string {
  return topic.replace(/<[^>]*>/g, '*');
}

/**
 * The least-privilege ACL rules of one service's user in a deployment:
 * - keys: its own (`ic:{<service>}:*`, the RPC registries of what it serves,
 *   its mutexes) read-write; the variables it reads and the registries of
 *   what it calls read-only (`%R~`); the query streams of what it sends to
 *   write-only (`%W~`);
 * - channels: its own request channels and the reply channels it answers on,
 *   its own calls' request and reply channels, the change channels of what it
 *   owns and reads, its topics, and each psubscribe pattern as written;
 * - commands: those of the capabilities it uses, including every command the
 *   library's Lua scripts call.
 * Throws a ValidationError for an unknown service or a malformed plan.
 */
export function serviceAcl(deployment: AclDeployment, service: string): AclRules {
  const plan = deployment.services[service];
  if (plan === undefined) throw new ValidationError(`service must be one of the deployment's services (${Object.keys(deployment.services).join(', ')}); received ${describeValue(service)}`);
  assertName('service', service);
  const names = new Names(deployment.namespace ?? '', { shardChannels: deployment.cluster === true });
  const read = new Set<string>();
  const write = new Set<string>();
  const both = (key: string): void => {
    read.add(key);
    write.add(key);
  };
  const channels = new Set<string>();
  // every client consumes its own durable queues unless told not to
  const capabilities = new Set<AclCapability>(['variables', 'registry', 'queues']);
  if (deployment.cluster === true) capabilities.add('cluster');
  if (plan.inspect === true) capabilities.add('inspect');

  // its own keys (variables it owns, its instance registry, its queues, claims, dead letters) and RPC registry
  both(names.serviceKeyPattern(service));
  // what it serves (its service: every RedisRPCClient takes SYNC and ASYNC queries there; its modules):
  // RPC registry, its own request channels (any caller), the replies it sends
  const served: Array<[name: string, topic: string]> = [[service, `service.${service}.rpc`], ...(plan.modules ?? []).map((module): [string, string] => {
    assertName('modules entry', module);
    // replies name their callee by name alone (`...from.{<callee>}`): a module named after a service would read that service's replies
    if (module in deployment.services) throw new ValidationError(`modules entry of "${service}" must not be the key of a service of the deployment (their replies would share channels); received ${describeValue(module)}`);
    return [module, `module.${module}.rpc`];
  })];
  for (const [name, topic] of served) {
    capabilities.add('rpc');
    both(names.serviceKeyPattern(Names.rpcRegistry(topic)));
    channels.add(names.rpcInstance(topic, '*'));
    channels.add(names.rpcReplies('*', '*', name));
  }
  // its variables' change events
  channels.add(names.variableChanged(service, '*'));
  for (const variable of plan.reads ?? []) {
    const { owner, name, keyed } = typeof variable === 'string' ? splitVarRef(variable) : { owner: variable.owner, name: variable.name, keyed: variable.keyed as boolean | undefined };
    if (keyed !== true) read.add(names.variable(owner, name));
    if (keyed !== false) read.add(names.variable(owner, name, '*'));
    channels.add(names.variableChanged(owner, name));
  }
  // calls: read the target's registry, publish on its own request channel, read its own replies
  for (const called of plan.calls ?? []) {
    const { name, topic } = targetTopic(called);
    capabilities.add('rpc');
    read.add(names.instanceSet(Names.rpcRegistry(topic)));
    read.add(names.instanceAnnouncements(Names.rpcRegistry(topic)));
    channels.add(names.rpcInstance(topic, '*', service));
    channels.add(names.rpcReplies(service, '*', name));
  }
  // durable sends: XADD alone on the destination's streams (a selector); its consumed marker and registry are read to refuse an unknown one
  const appendOnly = new Set<string>();
  for (const destination of plan.sends ?? []) {
    assertName('sends entry', destination);
    capabilities.add('queues');
    appendOnly.add(names.queryStream(destination));
    appendOnly.add(names.broadcastStream(destination));
    read.add(names.queueConsumed(destination));
    read.add(names.instanceSet(destination));
    read.add(names.instanceAnnouncements(destination));
  }
  for (const mutexId of plan.mutexes ?? []) {
    if (typeof mutexId !== 'string' || !MUTEX_PATTERN.test(mutexId)) throw new ValidationError(`mutexes entry must be a mutex id or a glob of them (1-200 of letters, digits, "_", ".", ":", "-" and the glob characters "*?[]^\\"); received ${describeValue(mutexId)}`);
    capabilities.add('mutex');
    both(names.mutexKeyPattern(mutexId));
    channels.add(names.mutexWake('*', mutexId));
  }
  // topics: the catalogue's, and the plan's own
  const topics = new Map<string, string>();
  for (const topic of plan.publishes ?? []) topics.set(topic, 'publishes entry');
  for (const topic of plan.subscribes ?? []) topics.set(topic, 'subscribes entry');
  for (const [key, topic] of Object.entries(deployment.catalogue?.topics ?? {})) {
    if (typeof topic?.name !== 'string' || !Array.isArray(topic.publishers) || !Array.isArray(topic.subscribers)) {
      throw new ValidationError(`catalogue.topics.${key} must be a topic definition (defineTopic: name, publishers, subscribers); received ${describeValue(topic)}`);
    }
    // the library's own channels (the built-in catalogue describes them) are granted from the plan above
    if (topic.name.startsWith('intracom.') || topic.name.startsWith('<')) continue;
    const involved = (list: readonly string[]): boolean => list.includes(service) || list.includes('*');
    if (involved(topic.publishers) || involved(topic.subscribers)) topics.set(topicPattern(topic.name), `catalogue topic ${JSON.stringify(topic.name)}`);
  }
  // A PSUBSCRIBE pattern is matched against `&` rules literally: each pattern the service uses needs its own rule.
  for (const pattern of plan.patterns ?? []) topics.set(pattern, 'patterns entry');
  for (const [topic, field] of topics) {
    const channel = names.channel(topic);
    assertNotLibraryChannel(names, field, topic, channel);
    channels.add(channel);
  }
  if (topics.size > 0) capabilities.add('events');

  const keys: string[] = [];
  for (const key of [...new Set([...read, ...write])].sort()) {
    if (read.has(key) && write.has(key)) keys.push(`~${key}`);
    else keys.push(read.has(key) ? `%R~${key}` : `%W~${key}`);
  }
  const ownKeys = names.serviceKeyPattern(service);
  const streams = [...appendOnly].filter((key) => !key.startsWith(ownKeys.slice(0, -1))).sort();
  const selectors = streams.length === 0 ? [] : [`(${streams.map((key) => `%W~${key}`).join(' ')} +xadd)`];
  return rulesOf(commandsOf(ACL_CAPABILITIES.filter((capability) => capabilities.has(capability))), keys, [...channels].sort().map((channel) => `&${channel}`), selectors);
}

/**
 * Throws a ValidationError when a topic or pattern granted from the catalogue
 * or the plan (an `&` rule, which Redis matches as a glob) could match one of
 * the library's own channels of any service: anything under `intracom.` (replies,
 * variable changes, mutex notices) and the per-caller request channels
 * (`service.{<name>}.rpc.<instanceId>.from.{<caller>}`, `module.{...}`), which
 * end with `}`. Conservative: a glob that might match is refused.
 */
function assertNotLibraryChannel(names: Names, field: string, topic: string, channel: string): void {
  const head = names.namespace === '' ? '' : `${names.namespace}:`;
  const reaches = mayStartWith(channel, `${head}intracom.`) || ((mayStartWith(channel, `${head}service.{`) || mayStartWith(channel, `${head}module.{`)) && mayEndWithBrace(channel));
  if (reaches) throw new ValidationError(`${field} must not match the library's own channels (intracom.*, and RPC requests service.{<name>}.rpc.<instance>.from.{<caller>}); received ${describeValue(topic)}`);
}

/** Whether some string starting with `prefix` may match the glob `pattern` (conservative: past a character class, anything may). */
function mayStartWith(pattern: string, prefix: string): boolean {
  let p = 0;
  for (let i = 0; i < prefix.length; i++, p++) {
    if (p >= pattern.length) return false;
    const c = pattern[p];
    if (c === '*' || c === '[') return true;
    if (c === '\\' && p + 1 < pattern.length) p += 1;
    else if (c === '?') continue;
    if (pattern[p] !== prefix[i]) return false;
  }
  return true;
}

/** Whether the glob `pattern` may match a string ending with `}` (conservative: unless it ends with another plain character). */
function mayEndWithBrace(pattern: string): boolean {
  return /[}*?\]]$/.test(pattern);
}

function splitVarRef(ref: string): { owner: string; name: string; keyed: undefined } {
  const slash = ref.lastIndexOf('/');
  if (slash <= 0 || slash === ref.length - 1) throw new ValidationError(`reads entry must be a variable declaration or "owner/name"; received ${describeValue(ref)}`);
  const owner = ref.slice(0, slash);
  const name = ref.slice(slash + 1);
  // a glob in either part would reach other variables (`web.*/x` matches web.evil's)
  assertName('reads entry owner', owner);
  assertSegment('reads entry name', name);
  return { owner, name, keyed: undefined };
}

/** One `ACL SETUSER` line for the user of `service` in a deployment (named after the service unless `user` is given). */
export function serviceAclLine(deployment: AclDeployment, service: string, options: { user?: string; password?: string } = {}): string {
  return setUserLine(options.user ?? service, options.password, serviceAcl(deployment, service));
}

function setUserLine(user: string, password: string | undefined, rules: AclRules): string {
  if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(user)) throw new ValidationError(`user must be 1-128 of letters, digits, "_", ".", "@" and "-"; received ${describeValue(user)}`);
  // a space would end the password and start another rule (`x nopass` would make the user accept any password)
  if (password !== undefined && password !== '' && !/^[\x21-\x7e]{1,512}$/.test(password)) throw new ValidationError(`password must be 1-512 printable ASCII characters without spaces; received a value of ${typeof password === 'string' ? `${password.length} characters` : typeof password}`);
  const secret = password === undefined || password === '' ? '<password>' : password;
  return ['ACL', 'SETUSER', user, 'reset', 'on', `>${secret}`, ...rules.all].join(' ');
}

/** One `ACL SETUSER` line for `user` (the password as `>password` is left for the operator to add, or given here). */
export function aclSetUserLine(user: string, options: AclOptions & { password?: string } = {}): string {
  return setUserLine(user, options.password, aclRules(options));
}
