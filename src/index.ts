/**
 * intracom: typed variables, events, RPC, durable queries and a mutex between
 * services and their instances, over Redis. This file only re-exports the
 * public surface.
 */
export { RedisClient, type ReceivedEvent, type EventHandler, type Unsubscribe, type InstanceInfo, type VariableChange, type SetOptions, type ClientStats } from './client/RedisClient';
export { type RedisClientOptions, type LimitOptions, type RegistryOptions, DEFAULT_CLIENT_OPTIONS } from './client/RedisClientOptions';
export * from './envelope/index';
export * from './errors/index';
export { type Route, type RouteStats, type RouteStatus, type MessageListener, type PatternListener } from './route/Route';
export { MemoryRoute } from './route/MemoryRoute';
export { MemoryBus, type MemoryBusOptions } from './route/MemoryBus';
export { RedisRoute, type RedisConnection } from './route/RedisRoute';
export { VERSION } from './version';
export * from './mutex/index';
export * from '../vars/index';
export * from './queues/index';
export * from './rpc/index';
