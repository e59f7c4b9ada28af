import { IntracomError } from './IntracomError';

/**
 * Redis could not be reached, or did not answer within the command deadline,
 * so the outcome is unknown: intracom reports this instead of guessing (a
 * mutex is never said to be "taken" or "free" without Redis's answer).
 * `cause` is the underlying connection error when there is one.
 */
export class RedisUnavailableError extends IntracomError {
  /** What was being done, such as `P "schema-init"`. */
  readonly operation: string;

  constructor(operation: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_REDIS_UNAVAILABLE', `${operation} failed: Redis is unavailable (${reason}); the outcome is unknown`, options);
    this.operation = operation;
  }
}
