import { IntracomError } from './IntracomError';

/**
 * No live instance serves the called service or module: none is registered,
 * or every registered one turned out to be gone when the request was sent
 * (a publish that reached no subscriber). Known at once, not at a timeout.
 */
export class NoServiceError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The function that was called (the action, for a durable query). */
  readonly functionName: string;

  /**
   * @param operation - What could not be done, as the message says it after "cannot": a call unless
   * told otherwise (a durable query is stored, not called).
   */
  constructor(target: string, functionName: string, detail = 'no live instance is registered', operation = `call "${target}" function "${functionName}"`) {
    super('ERR_NO_SERVICE', `cannot ${operation}: ${detail}`);
    this.service = target;
    this.functionName = functionName;
  }
}
