/**
 * intracom: typed variables, events, RPC, durable queries and a mutex between
 * services and their instances, over Redis.
 *
 * This file only re-exports the public surface, each name listed (no
 * `export *`), so that what users can import is decided here and reviewed in
 * docs/api-report.md (test/package/api-report.test.ts fails when the built
 * surface and the report differ). Internals stay importable from their
 * files inside the repository, not from the package.
 */

// ---- the client: variables, events, registry ----
export { RedisClient } from './client/RedisClient';
export type { ReceivedEvent, EventHandler, Unsubscribe, InstanceInfo, VariableChange, SetOptions, SubscribeOptions, ClientStats } from './client/RedisClient';
export { DEFAULT_CLIENT_OPTIONS } from './client/RedisClientOptions';
export type { RedisClientOptions, LimitOptions, RegistryOptions } from './client/RedisClientOptions';

// ---- RPC (and the face of the four query types) ----
export { RedisRPCClient, DEFAULT_RPC_OPTIONS } from './rpc/index';
export type {
  ExposeOptions,
  Implementation,
  RpcStats,
  RedisRPCClientOptions,
  RpcOptions,
  StandaloneRpcOptions,
  SharedRpcOptions,
  CallOptions,
  RpcCalls,
  CallContext,
  RpcHandler,
  FunctionInfo,
  TargetDescription,
  RpcSpread,
  RpcCallerStats,
  RpcServerStats,
} from './rpc/index';

// ---- the durable query types (FIRE_AND_FORGET, BROADCAST, ASYNC, SYNC) ----
export { DEFAULT_QUERY_QUEUE_OPTIONS } from './queues/index';
export type {
  QueryHandler,
  QueryContext,
  QueryHandle,
  QueryRequestOptions,
  DurableSendOptions,
  QueueInspection,
  QueryQueueStats,
  QueryQueueOptions,
  DeadLetter,
  QueueConsumerStats,
} from './queues/index';

// ---- the mutex ----
export { RedisMutex, MutexLock, DEFAULT_MUTEX_OPTIONS } from './mutex/index';
export type { CriticalSection, RedisMutexOptions, AcquireOptions, MutexRecord } from './mutex/index';

// ---- the query envelope ----
export { QueryType, QueryState, QueryRoute, MsgpackCodec, PROTOCOL_VERSION } from './envelope/index';
export type { ActionResult, Query, EventHeaders, EventMessage, Codec } from './envelope/index';
export { AUTH_ENVIRONMENT } from './envelope/AuthOptions';
export type { AuthOptions, EncryptionOptions, KeyInput } from './envelope/AuthOptions';
export type { Sender } from './envelope/sender';

// ---- errors: one class per failure, all extending IntracomError ----
export {
  IntracomError,
  ValidationError,
  PayloadTooLargeError,
  MalformedMessageError,
  NotConnectedError,
  ConnectionError,
  TopologyError,
  TimeoutError,
  NoHandlerError,
  NoServiceError,
  PermissionError,
  RemoteError,
  ConnectionLostError,
  CancelledError,
  ServiceBusyError,
  LockLostError,
  AcquireTimeoutError,
  AcquireAbortedError,
  RedisUnavailableError,
  SnapshotError,
  InstanceIdInUseError,
  AuthenticationError,
} from './errors/index';
export type { RemoteErrorInfo } from './errors/index';

// ---- the catalogue (also importable alone as `intracom/vars`) ----
export {
  RedisVars,
  RedisTopics,
  builtinCatalogue,
  defineVar,
  defineTopic,
  defineCatalogue,
  mergeCatalogues,
  defineFunctions,
  schema,
  Names,
  moduleEvents,
  moduleMessages,
  moduleRpc,
  serviceEvents,
  serviceMessages,
  serviceRpc,
  websocketEvents,
  aclRules,
  aclSetUserLine,
  serviceAcl,
  serviceAclLine,
  callersOf,
  ACL_CAPABILITIES,
  ACL_COMMANDS,
} from '../vars/index';
export type {
  AclDeployment,
  ServicePlan,
  VarRef,
  TargetRef,
  VarType,
  VarTypeMap,
  VarDefinition,
  VarValue,
  VarKeyArgs,
  TopicDefinition,
  Catalogue,
  WebsocketKind,
  NamesOptions,
  Schema,
  StandardSchemaV1,
  AnySchema,
  Infer,
  InferArgs,
  InferInput,
  InferSide,
  InferTuple,
  InferObject,
  SchemaSide,
  FunctionDefinition,
  FunctionCatalogue,
  FunctionName,
  FunctionArgs,
  FunctionResult,
  HandlerArgs,
  HandlerResult,
  RpcScope,
  AclCapability,
  AclOptions,
  AclRules,
} from '../vars/index';

// ---- for authors of routes (how bytes move); users pick `route: 'redis' | 'memory'` ----
export type {
  Route,
  RouteStats,
  RouteStatus,
  MessageListener,
  PatternListener,
  HeldInstanceId,
  WriteDone,
  StreamStore,
  StreamEntry,
  StreamInfo,
  StreamGroupInfo,
  AckOptions,
  DoneRecords,
  DeadLetterStore,
  EntryQueries,
  ClaimState,
  ConsumeStep,
  ConsumeStepResult,
  RenewResult,
} from './route/index';
export type { RedisConnection, ClusterConnectionOptions, ClusterSeed, Topology, DurabilityOptions } from './route/index';

export { VERSION } from './version';
