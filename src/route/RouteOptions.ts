import type { Logger } from 'pino';
import type { Names } from '../../vars/names';
import type { AuthSettings } from '../envelope/AuthOptions';
import type { Codec } from '../envelope/codec';
import type { FrameLimits } from './FrameBatcher';
import { emptyAuthCounters } from '../envelope/FrameSealer';

/** How durable an appended query must be before its send resolves (the redis route). */
export interface DurabilityOptions {
  /**
   * Replicas that must hold each stream append (FIRE_AND_FORGET, BROADCAST,
   * ASYNC, SYNC) before the send resolves, checked with Redis `WAIT` right
   * after the `XADD`. With 1 on a deployment with a replica, a master killed
   * after a send resolved loses none of it when its replica is promoted
   * (Sentinel or Cluster failover). 0 resolves on the master's reply:
   * replication is asynchronous, and what the master took in its last
   * moments before a kill may be lost.
   * @default 0
   */
  replicas?: number;
  /**
   * How long to wait for those replicas, in ms. Fewer acknowledgements in
   * time reject the send with RedisUnavailableError: the entry may exist or
   * not after a failover, and sending again is safe (queries are
   * deduplicated by queryId). At most 8 appends wait for replicas at once;
   * one that finds no place within this time fails unsent
   * (RedisUnavailableError, `applied: false`).
   * @default 1000
   */
  timeoutMs?: number;
}

/** The defaults of {@link DurabilityOptions}. */
export const DEFAULT_DURABILITY = { replicas: 0, timeoutMs: 1000 } as const;

/** What every route needs from its owner. */
export interface RouteOptions {
  /** Encodes frames. */
  codec: Codec;
  /** Size limits. */
  limits: FrameLimits;
  /** A child logger for the route. */
  logger: Logger;
  /** Key and channel names of the deployment. */
  names: Names;
  /** Replica acknowledgement of durable appends (the redis route). */
  durability?: Required<DurabilityOptions>;
  /** How long `connect()` may take before it rejects with ConnectionError, in ms. @default DEFAULT_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
  /** Signing, verification and encryption of frames (docs/security.md); none when undefined. */
  auth?: AuthSettings;
}

/** How long a route's `connect()` waits for Redis to answer by default, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Counters at zero. */
export function emptyStats() {
  return { framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0, malformed: 0, ...emptyAuthCounters() };
}
