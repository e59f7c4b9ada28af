/** The route contract, for authors of routes. The concrete routes are chosen with `route: 'redis' | 'memory'`. */
export type { Route, RouteStats, RouteStatus, MessageListener, PatternListener, HeldInstanceId } from './Route';
export type { WriteDone } from './FrameBatcher';
export type { StreamStore, StreamEntry, StreamInfo, StreamGroupInfo, AckOptions, DoneRecords, DeadLetterStore, EntryQueries, ClaimState, ConsumeStep, ConsumeStepResult, RenewResult } from './StreamStore';
export type { RedisConnection, ClusterConnectionOptions, ClusterSeed, Topology } from './connection';
export type { DurabilityOptions } from './RouteOptions';
