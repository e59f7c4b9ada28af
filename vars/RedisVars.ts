/**
 * The built-in catalogue: OpenTera's RedisVars that make sense outside OpenTera,
 * every key the library itself stores, and the topic convention.
 */
import { defineCatalogue, defineTopic, defineVar } from './define';

/** The built-in variables. Typed: `client.get(RedisVars.UserLoginAttempts, userUuid)` is a `number | null`. */
export const RedisVars = {
  UserTokenAPIKey: defineVar({ name: 'UserTokenAPIKey', type: 'string', owner: 'auth', description: 'Secret that signs user tokens (JWT HS256).' }),
  DeviceTokenAPIKey: defineVar({ name: 'DeviceTokenAPIKey', type: 'string', owner: 'auth', description: 'Secret that signs dynamic device tokens.' }),
  DeviceStaticTokenAPIKey: defineVar({
    name: 'DeviceStaticTokenAPIKey',
    type: 'string',
    owner: 'auth',
    description: 'Secret that signs static device tokens, used for the first login.',
  }),
  ParticipantTokenAPIKey: defineVar({
    name: 'ParticipantTokenAPIKey',
    type: 'string',
    owner: 'auth',
    description: 'Secret that signs dynamic participant tokens.',
  }),
  ParticipantStaticTokenAPIKey: defineVar({
    name: 'ParticipantStaticTokenAPIKey',
    type: 'string',
    owner: 'auth',
    description: 'Secret that signs static participant tokens, used for the first login.',
  }),
  ServiceTokenAPIKey: defineVar({ name: 'ServiceTokenAPIKey', type: 'string', owner: 'auth', description: 'Secret that signs service tokens.' }),
  ServiceInfo: defineVar({
    name: 'ServiceInfo',
    type: 'json',
    owner: 'registry',
    keyed: true,
    keyDescription: 'service key',
    description: "A service's public description (uuid, hostname, port, endpoint); OpenTera's `service.<key>`.",
  }),
  UserLoginAttempts: defineVar({
    name: 'UserLoginAttempts',
    type: 'integer',
    owner: 'auth',
    keyed: true,
    keyDescription: 'user uuid',
    ttlMs: 120_000,
    description: 'Failed password logins of a user; use `increment`, never read-modify-write.',
  }),
  User2FALoginAttempts: defineVar({
    name: 'User2FALoginAttempts',
    type: 'integer',
    owner: 'auth',
    keyed: true,
    keyDescription: 'user uuid',
    ttlMs: 900_000,
    description: 'Second-factor attempts of a user.',
  }),
  ParticipantLoginAttempts: defineVar({
    name: 'ParticipantLoginAttempts',
    type: 'integer',
    owner: 'auth',
    keyed: true,
    keyDescription: 'participant uuid',
    ttlMs: 120_000,
    description: 'Failed logins of a participant.',
  }),
  WebsocketTicket: defineVar({
    name: 'WebsocketTicket',
    type: 'string',
    owner: 'auth',
    keyed: true,
    keyDescription: 'one-time session id',
    ttlMs: 60_000,
    description: 'One-time ticket that lets a websocket connect: the uuid of the user, participant or device (OpenTera kept it outside RedisVars).',
  }),
  ServiceAuthCode: defineVar({
    name: 'ServiceAuthCode',
    type: 'json',
    owner: 'auth',
    keyed: true,
    keyDescription: 'authorisation code',
    ttlMs: 300_000,
    description: 'Pending service authorisation (OpenTera kept it outside RedisVars as service_auth_code_<code>).',
  }),
  // ---- keys the library itself stores (read-only for applications) ----
  InstanceSet: defineVar({
    name: 'instances',
    type: 'buffer',
    owner: '<service>',
    internal: true,
    description: 'Sorted set of the live instance ids of a service (and, with the RPC topic as owner, of the instances serving that topic), scored by heartbeat expiry (Redis server time, ms).',
  }),
  InstanceAnnouncements: defineVar({
    name: 'announcements',
    type: 'msgpack',
    owner: '<service>',
    internal: true,
    description: 'Hash of instance id to announcement (service, instance id, host, pid, start time, version), pruned with the instance set.',
  }),
  Mutex: defineVar({
    name: 'lock',
    type: 'string',
    owner: 'mutex:<mutexId>',
    internal: true,
    description: 'Holder of a mutex: the owner token, set with SET NX PX; deleted only by its owner (Lua compare-and-delete).',
  }),
  MutexFence: defineVar({
    name: 'fence',
    type: 'integer',
    owner: 'mutex:<mutexId>',
    internal: true,
    description: 'Fencing counter of a mutex: every acquisition takes the next value.',
  }),
  QueryStream: defineVar({
    name: 'queries',
    type: 'buffer',
    owner: '<service>',
    internal: true,
    description: 'Stream of durable queries to a service, read by its instances through one consumer group.',
  }),
  BroadcastStream: defineVar({
    name: 'broadcast',
    type: 'buffer',
    owner: '<service>',
    internal: true,
    description: 'Stream of BROADCAST queries to a service, one consumer group per instance.',
  }),
  ProcessedQueries: defineVar({
    name: 'done',
    type: 'buffer',
    owner: '<service>',
    keyed: true,
    keyDescription: '<scope>:<time bucket> (scope: workers, or an instance id for BROADCAST)',
    internal: true,
    description: 'Hash of the query ids completed in one time bucket (queues.dedupeTtlMs long), for duplicate suppression; expires two buckets later.',
  }),
  BroadcastSeen: defineVar({
    name: 'seen',
    type: 'string',
    owner: '<service>',
    keyed: true,
    keyDescription: 'instance id',
    internal: true,
    description: 'Refreshed by each instance; once it expires (queues.broadcastRetentionMs), the instance\'s BROADCAST group is removed.',
  }),
  DeadLetters: defineVar({
    name: 'dead',
    type: 'buffer',
    owner: '<service>',
    internal: true,
    description: 'Stream of queries that exhausted their attempts, for listing and replay.',
  }),
} as const;

/** The built-in topics (OpenTera's convention plus the library's own channels). */
export const RedisTopics = {
  ModuleEvents: defineTopic({ name: 'module.<name>.events', payload: 'event', publishers: ['<name>'], subscribers: ['*'], description: 'Events raised by a module.' }),
  ModuleMessages: defineTopic({ name: 'module.<name>.messages', payload: 'event', publishers: ['*'], subscribers: ['<name>'], description: 'Messages addressed to a module.' }),
  ModuleRpc: defineTopic({ name: 'module.<name>.rpc', payload: 'query frame', publishers: ['*'], subscribers: ['<name>'], description: 'Calls to a module: the topic callers name; each request travels on `<topic>.<instanceId>` (RpcInstance).' }),
  ServiceEvents: defineTopic({ name: 'service.<key>.events', payload: 'event', publishers: ['<key>'], subscribers: ['*'], description: 'Events raised by a service.' }),
  ServiceMessages: defineTopic({ name: 'service.<key>.messages', payload: 'event', publishers: ['*'], subscribers: ['<key>'], description: 'Messages addressed to a service.' }),
  ServiceRpc: defineTopic({ name: 'service.<key>.rpc', payload: 'query frame', publishers: ['*'], subscribers: ['<key>'], description: 'Calls to a service: the topic callers name; each request travels on `<topic>.<instanceId>` (RpcInstance).' }),
  WebsocketUserEvents: defineTopic({ name: 'websocket.user.<uuid>.events', payload: 'event', publishers: ['*'], subscribers: ['websocket'], description: 'Events for one connected user.' }),
  WebsocketParticipantEvents: defineTopic({
    name: 'websocket.participant.<uuid>.events',
    payload: 'event',
    publishers: ['*'],
    subscribers: ['websocket'],
    description: 'Events for one connected participant.',
  }),
  WebsocketDeviceEvents: defineTopic({ name: 'websocket.device.<uuid>.events', payload: 'event', publishers: ['*'], subscribers: ['websocket'], description: 'Events for one connected device.' }),
  VariableChanged: defineTopic({
    name: 'intracom.var.<owner>.<name>',
    payload: 'event: { key: string | null, value (null when deleted), deleted: boolean } (docs/protocol.md)',
    publishers: ['*'],
    subscribers: ['*'],
    description: 'A variable was set, incremented or deleted through intracom (what `watch` listens to).',
  }),
  RpcInstance: defineTopic({
    name: '<module|service rpc topic>.<instanceId>',
    payload: 'frame of RPC requests (and cancels, probes)',
    publishers: ['*'],
    subscribers: ['<instanceId>'],
    description: 'Where one instance takes the calls to a module or service it serves, such as `service.calc.rpc.<instanceId>`: each call reaches exactly one instance.',
  }),
  RpcReplies: defineTopic({
    name: 'intracom.rpc.reply.<service>.<instanceId>',
    payload: 'frame of RPC replies',
    publishers: ['*'],
    subscribers: ['<instanceId>'],
    description: 'Replies to the calls one instance made, matched by request id.',
  }),
} as const;

/** The built-in catalogue, as rendered in docs/catalogue.md. */
export const builtinCatalogue = defineCatalogue('intracom built-in catalogue', { vars: RedisVars, topics: RedisTopics });
