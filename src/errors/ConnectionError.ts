import { IntracomError } from './IntracomError';

/** Redis could not be reached when connecting; nothing was set up. `connect()` may be called again. */
export class ConnectionError extends IntracomError {
  constructor(target: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_CONNECTION', `could not connect to Redis at ${target}: ${reason}`, options);
  }
}
