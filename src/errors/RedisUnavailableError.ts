import { IntracomError } from './IntracomError';

/**
 * Redis could not be reached, or did not answer within the command deadline,
 * so the outcome is unknown: intracom reports this instead of guessing (a
 * mutex is never said to be "taken" or "free" without Redis's answer).
 * `cause` is the underlying connection error when there is one.
 *
 * When Redis answered that it cannot run commands now (`CLUSTERDOWN`,
 * `TRYAGAIN`, `LOADING`, `MASTERDOWN`, `BUSY`, `READONLY`, a cluster that kept
 * redirecting), or the command was refused before it was sent, nothing was
 * applied: `applied` is then `false` and the command is safe to send again.
 */
export class RedisUnavailableError extends IntracomError {
  /** What was being done, such as `P "schema-init"`. */
  readonly operation: string;
  /** `false` when Redis certainly did not apply it; `undefined` when the outcome is unknown. */
  readonly applied: false | undefined;

  constructor(operation: string, reason: string, options?: { cause?: unknown; applied?: false }) {
    const outcome = options?.applied === false ? 'nothing was applied, so it is safe to retry' : 'the outcome is unknown';
    super('ERR_REDIS_UNAVAILABLE', `${operation} failed: Redis is unavailable (${reason}); ${outcome}`, options);
    this.operation = operation;
    this.applied = options?.applied;
  }
}
