import type { Logger } from 'pino';
import type { Names } from '../../vars/names';
import type { Codec } from '../envelope/codec';
import type { FrameLimits } from './FrameBatcher';

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
  /** How long `connect()` may take before it rejects with ConnectionError, in ms. @default DEFAULT_CONNECT_TIMEOUT_MS */
  connectTimeoutMs?: number;
}

/** How long a route's `connect()` waits for Redis to answer by default, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Counters at zero. */
export function emptyStats() {
  return { framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0, malformed: 0 };
}
