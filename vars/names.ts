/**
 * Every Redis key and every pub/sub channel intracom touches is built here and
 * nowhere else.
 *
 * Keys: `[<namespace>:]ic:{<service>}:<kind>[:<parts>]`. The `{<service>}` hash
 * tag puts one service's keys in one Redis Cluster slot, so multi-key scripts
 * on a service stay legal in cluster mode.
 *
 * Channels: `[<namespace>:]<topic>` where topics follow OpenTera's convention
 * (`module.<name>.events`, `service.<key>.rpc`, ...). Pub/sub ignores Redis's
 * `db`, so the namespace is what keeps two deployments on one server apart.
 *
 * The library's own channels, those a generated ACL grants with a glob (RPC
 * requests and replies, variable changes, mutex hand-over notices), always
 * put every service (and caller, callee, mutex) name in braces:
 * `service.{calc}.rpc.<instanceId>.from.{web}`,
 * `intracom.rpc.reply.{web}.<instanceId>.from.{calc}`, `intracom.var.{calc}.<name>`,
 * `intracom.mutex.wake.{mutex:<id>}.<waiterId>`. No name holds a brace, so a
 * rule such as `service.{calc}.rpc.*` matches no channel of a service
 * `calc.rpc.admin` (`service.{calc.rpc.admin}.rpc...`): without the braces, a
 * glob's `*` (which matches dots) would reach every service whose name
 * extends another's (docs/security.md).
 *
 * With `shardChannels` (a Redis Cluster), the topics of the convention carry
 * the service's hash tag too: `service.{calc}.events`,
 * `websocket.user.{<uuid>}.events`. A tagged channel hashes to the slot of the
 * service's keys (`ic:{calc}:...`; the first brace pair is the tag), so one
 * service's channels and streams live on one shard, and the route sends it
 * with sharded pub/sub. Other topics stay untagged (classic pub/sub, seen by
 * patterns).
 */
import { describeValue } from './describe';
import { ValidationError } from './ValidationError';
import { assertName } from './define';

const NAMESPACE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Throws a ValidationError unless `namespace` is empty or 1-64 of `[A-Za-z0-9_-]` (no glob characters). */
export function assertNamespace(namespace: unknown): asserts namespace is string {
  if (namespace === '') return;
  if (typeof namespace !== 'string' || !NAMESPACE_PATTERN.test(namespace)) {
    throw new ValidationError(`namespace must be empty or 1-64 characters of letters, digits, "_" and "-"; received ${describeValue(namespace)}`);
  }
}

function prefix(namespace: string): string {
  return namespace === '' ? '' : `${namespace}:`;
}

function serviceKey(namespace: string, service: string, kind: string, ...parts: string[]): string {
  const tail = parts.length === 0 ? '' : `:${parts.join(':')}`;
  return `${prefix(namespace)}ic:{${service}}:${kind}${tail}`;
}

/** How channels are named. */
export interface NamesOptions {
  /**
   * Put the service's hash tag in per-service and per-instance channels, so
   * that a cluster route sends them with sharded pub/sub.
   * @default false
   */
  shardChannels?: boolean;
}

/** Per-service topics of OpenTera's convention; the name between scope and suffix may hold dots. */
const SERVICE_TOPIC = /^(service|module)\.([^{}]+)\.(events|messages|rpc)$/;
/** A per-instance RPC request channel, namespace-free: `service.{<key>}.rpc.<instanceId>[.from.{<caller>}]`. */
const RPC_CHANNEL = /^(service|module)\.\{[^{}]+\}\.rpc\.[^.{}]+(\.from\.\{[^{}]+\})?$/;
const WEBSOCKET_TOPIC = /^(websocket\.(?:user|participant|device))\.([^.{}]+)\.events$/;

/** Builds the names of one deployment (one namespace). */
export class Names {
  /** The namespace prefix; empty for none. */
  readonly namespace: string;
  /** Whether per-service and per-instance channels carry hash tags (cluster mode). */
  readonly shardChannels: boolean;

  constructor(namespace = '', options: NamesOptions = {}) {
    assertNamespace(namespace);
    this.namespace = namespace;
    this.shardChannels = options.shardChannels === true;
  }


  // ---- variables ----

  /** Key of a catalogue variable (`param` for keyed variables). */
  variable(owner: string, name: string, param?: string): string {
    return param === undefined ? serviceKey(this.namespace, owner, 'var', name) : serviceKey(this.namespace, owner, 'var', name, param);
  }

  /** Channel on which changes of one variable are announced to watchers. */
  variableChanged(owner: string, name: string): string {
    return `${prefix(this.namespace)}intracom.var.{${owner}}.${name}`;
  }

  /**
   * The owner and name of the variable whose changes a topic (namespace-free,
   * with or without the owner's braces) announces, or undefined for another
   * topic. A variable name has no dot, so the name is what follows the last dot.
   */
  static variableOfTopic(topic: string): { owner: string; name: string } | undefined {
    const head = 'intracom.var.';
    if (!topic.startsWith(head)) return undefined;
    const dot = topic.lastIndexOf('.');
    if (dot <= head.length) return undefined;
    const owner = topic.slice(head.length, dot);
    return { owner: owner.startsWith('{') && owner.endsWith('}') ? owner.slice(1, -1) : owner, name: topic.slice(dot + 1) };
  }

  // ---- instance registry ----

  /**
   * The registry owner of the instances serving an RPC target (`rpc:<topic>`,
   * such as `rpc:service.calc.rpc`), for {@link instanceSet} and
   * {@link instanceAnnouncements}: a name holds no `:`, so no service's own
   * keys (`ic:{service.calc.rpc}:...`, of a service so named) are the registry of a target.
   */
  static rpcRegistry(topic: string): string {
    return `rpc:${topic}`;
  }

  /** Sorted set of a service's instance ids, scored by heartbeat expiry (server time, ms). */
  instanceSet(service: string): string {
    return serviceKey(this.namespace, service, 'instances');
  }

  /** Hash of a service's instance announcements (id -> msgpack), pruned with the sorted set. */
  instanceAnnouncements(service: string): string {
    return serviceKey(this.namespace, service, 'announcements');
  }

  /**
   * Pattern matching one kind of per-service key of every service of this
   * namespace (`instances`, `queries`, `broadcast`, `dead`), for discovery
   * with SCAN; read the service back with {@link Names.serviceOfKey}.
   */
  serviceScanPattern(kind: string): string {
    return `${prefix(this.namespace)}ic:{*}:${kind}`;
  }

  /** The service (hash tag) of a per-service key of this namespace, such as `calc` for `ic:{calc}:queries`; undefined for another key. */
  serviceOfKey(key: string): string | undefined {
    const head = `${prefix(this.namespace)}ic:{`;
    if (!key.startsWith(head)) return undefined;
    const end = key.indexOf('}', head.length);
    return end === -1 ? undefined : key.slice(head.length, end);
  }

  /** Pattern matching every key of one service (`ic:{<service>}:*`), for ACL key rules: no other service's key matches it. */
  serviceKeyPattern(service: string): string {
    return serviceKey(this.namespace, service, '*');
  }

  // ---- mutexes ----

  /** Pattern matching every key of one mutex (lock, fence, queue, waiters), for ACL key rules. */
  mutexKeyPattern(mutexId: string): string {
    return `${prefix(this.namespace)}ic:{mutex:${mutexId}}:*`;
  }

  /** Key of a mutex record (`SET NX PX`). */
  mutex(mutexId: string): string {
    return `${prefix(this.namespace)}ic:{mutex:${mutexId}}:lock`;
  }

  /** Counter that yields the fencing tokens of a mutex; same slot as the lock. */
  mutexFence(mutexId: string): string {
    return `${prefix(this.namespace)}ic:{mutex:${mutexId}}:fence`;
  }

  /** Sorted set of the acquirers waiting for a mutex, by arrival; same slot as the lock. */
  mutexQueue(mutexId: string): string {
    return `${prefix(this.namespace)}ic:{mutex:${mutexId}}:queue`;
  }

  /** Hash from each waiting acquirer's queue entry to its liveness deadline and wake channel; same slot as the lock. */
  mutexWaiters(mutexId: string): string {
    return `${prefix(this.namespace)}ic:{mutex:${mutexId}}:waiters`;
  }

  /**
   * Channel on which one RedisMutex is told that a mutex it waits for was handed over to one of its
   * acquirers: one channel per (mutex, RedisMutex), in the slot of the lock (its hash tag), so that the
   * hand-over script can SPUBLISH to it and count its subscribers exactly with PUBSUB SHARDNUMSUB, and
   * so that an ACL grants the notices of the mutexes a service takes and no other
   * (`intracom.mutex.wake.{mutex:<id>}.*`).
   */
  mutexWake(waiterId: string, mutexId: string): string {
    return `${prefix(this.namespace)}intracom.mutex.wake.{mutex:${mutexId}}.${waiterId}`;
  }

  /** Pattern matching every mutex record of this namespace (for inspection with SCAN). */
  mutexScanPattern(): string {
    return `${prefix(this.namespace)}ic:{mutex:*}:lock`;
  }

  // ---- durable queries (streams) ----

  /** Stream of FIRE_AND_FORGET, ASYNC and SYNC queries for one service. */
  queryStream(service: string): string {
    return serviceKey(this.namespace, service, 'queries');
  }

  /** Stream of BROADCAST queries for one service (one consumer group per instance). */
  broadcastStream(service: string): string {
    return serviceKey(this.namespace, service, 'broadcast');
  }

  /**
   * `1` once an instance of the service has consumed its FIRE_AND_FORGET
   * queue: what a sender reads to refuse an unknown destination
   * (`requireKnownDestination`), as its ACL user may write the stream but not read it.
   */
  queueConsumed(service: string): string {
    return serviceKey(this.namespace, service, 'consumed');
  }

  /** Stream of queries that exhausted their attempts. */
  deadLetters(service: string): string {
    return serviceKey(this.namespace, service, 'dead');
  }

  /** Counter of the dead letters dropped because the store was full (`queues.maxDeadLetters`). */
  deadLettersDropped(service: string): string {
    return serviceKey(this.namespace, service, 'dead-dropped');
  }

  /**
   * Completion records of one consumer scope (`workers`, or an instance id
   * for BROADCAST) in one time bucket: a hash of query ids, for duplicate
   * suppression.
   */
  processed(service: string, scope: string, bucket: number): string {
    return serviceKey(this.namespace, service, 'done', scope, String(bucket));
  }

  /**
   * The claims of one consumer scope (`workers`, or an instance id for
   * BROADCAST): a hash from query id to who is processing it, from which
   * entry, until when (unless its holder renews it, so a crashed holder's
   * query is taken again).
   */
  queryClaims(service: string, scope: string): string {
    return serviceKey(this.namespace, service, 'claims', scope);
  }

  /** Expires when a BROADCAST consumer (an instance) has not been seen for the retention time; its group then stops holding the stream. */
  broadcastSeen(service: string, instanceId: string): string {
    return serviceKey(this.namespace, service, 'seen', instanceId);
  }

  /** Lease of the instance that maintains a service's streams (trims them, removes the groups of gone instances): its instance id. */
  queueMaintainer(service: string): string {
    return serviceKey(this.namespace, service, 'maintainer');
  }

  // ---- channels ----

  /**
   * Any topic name, with the namespace applied; in sharded mode, a
   * per-service topic of the convention gets its service's hash tag (a topic
   * that already has braces is left as it is).
   */
  channel(topic: string): string {
    return `${prefix(this.namespace)}${this.shardChannels ? this.tagTopic(topic) : topic}`;
  }

  /** The namespace-free, tag-free topic of a channel received from Redis. */
  topicOf(channel: string): string {
    const p = prefix(this.namespace);
    const topic = p !== '' && channel.startsWith(p) ? channel.slice(p.length) : channel;
    // the library's own channels always carry braces around names, which hold none
    if (topic.startsWith('intracom.') || RPC_CHANNEL.test(topic)) return topic.replace(/[{}]/g, '');
    if (!this.shardChannels) return topic;
    const open = topic.indexOf('{');
    const close = topic.indexOf('}', open + 1);
    if (open === -1 || close === -1) return topic;
    const plain = topic.slice(0, open) + topic.slice(open + 1, close) + topic.slice(close + 1);
    // only the tags this class adds come off: a user's own tag is part of the topic
    return this.tagTopic(plain) === topic ? plain : topic;
  }

  private tagTopic(topic: string): string {
    if (topic.includes('{') || topic.includes('}')) return topic;
    const service = SERVICE_TOPIC.exec(topic);
    if (service !== null) return `${service[1]}.{${service[2]}}.${service[3]}`;
    const websocket = WEBSOCKET_TOPIC.exec(topic);
    if (websocket !== null) return `${websocket[1]}.{${websocket[2]}}.events`;
    return topic;
  }

  // ---- rpc ----

  /**
   * Channel on which one instance takes the RPC requests of a target:
   * `<topic>.<instanceId>` with the target's name in braces, such as
   * `service.{calc}.rpc.<instanceId>` (OpenTera's topic, then the instance, so
   * that each call reaches exactly one instance). With `caller`, the channel
   * of that caller service alone: `service.{calc}.rpc.<instanceId>.from.{web}`.
   * Redis ACL channel rules cannot tell PUBLISH from SUBSCRIBE, so a caller
   * granted `service.{calc}.rpc.*.from.{web}` reads no other caller's
   * requests, and the instance knows the sending service from the channel it
   * arrived on (docs/security.md). The braces keep a server's
   * `service.{calc}.rpc.*` off the channels of a service `calc.rpc.admin`.
   */
  rpcInstance(topic: string, instanceId: string, caller?: string): string {
    const channel = `${prefix(this.namespace)}${Names.braceTopic(topic)}.${instanceId}`;
    return caller === undefined ? channel : `${channel}.from.{${caller}}`;
  }

  /** `service.<key>.rpc` as `service.{<key>}.rpc` (and so for modules); any other topic as it is. */
  private static braceTopic(topic: string): string {
    const rpc = SERVICE_TOPIC.exec(topic);
    return rpc === null ? topic : `${rpc[1]}.{${rpc[2]}}.${rpc[3]}`;
  }

  /**
   * Channel on which one instance of `service` receives the replies of
   * `callee` (the service or module it called) to its calls:
   * `intracom.rpc.reply.{<service>}.<instanceId>.from.{<callee>}`. One
   * channel per (caller, callee): a callee granted
   * `intracom.rpc.reply.*.from.{<callee>}` reads no reply another callee
   * sends, and a caller granted `intracom.rpc.reply.{web}.*.from.{calc}` none
   * meant for a service `web.evil`.
   */
  rpcReplies(service: string, instanceId: string, callee: string): string {
    return `${this.rpcRepliesPrefix()}{${service}}.${instanceId}.from.{${callee}}`;
  }

  /** Prefix of every RPC reply channel; a serving instance replies to no other address. */
  rpcRepliesPrefix(): string {
    return `${prefix(this.namespace)}intracom.rpc.reply.`;
  }
}

// ---- topic builders (OpenTera's convention, namespace-free) ----

/** `module.<name>.events`: events for (or from) a module. */
export const moduleEvents = (name: string): string => topic('module', name, 'events');
/** `module.<name>.messages`: messages addressed to a module. */
export const moduleMessages = (name: string): string => topic('module', name, 'messages');
/** `module.<name>.rpc`: calls to a module. */
export const moduleRpc = (name: string): string => topic('module', name, 'rpc');
/** `service.<key>.events`: events of a service. */
export const serviceEvents = (key: string): string => topic('service', key, 'events');
/** `service.<key>.messages`: messages addressed to a service. */
export const serviceMessages = (key: string): string => topic('service', key, 'messages');
/** `service.<key>.rpc`: calls to a service. */
export const serviceRpc = (key: string): string => topic('service', key, 'rpc');

/** The kinds of websocket client OpenTera addresses directly. */
export type WebsocketKind = 'user' | 'participant' | 'device';

/** `websocket.<kind>.<uuid>.events`: events for one connected websocket client. */
export function websocketEvents(kind: WebsocketKind, uuid: string): string {
  if (kind !== 'user' && kind !== 'participant' && kind !== 'device') {
    throw new ValidationError(`websocket kind must be "user", "participant" or "device"; received ${describeValue(kind)}`);
  }
  assertName('websocket uuid', uuid);
  return `websocket.${kind}.${uuid}.events`;
}

function topic(scope: 'module' | 'service', name: string, suffix: string): string {
  assertName(`${scope} name`, name);
  return `${scope}.${name}.${suffix}`;
}
