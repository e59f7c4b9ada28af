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
}

/** Counters at zero. */
export function emptyStats() {
  return { framesSent: 0, messagesSent: 0, framesReceived: 0, messagesReceived: 0, malformed: 0 };
}
