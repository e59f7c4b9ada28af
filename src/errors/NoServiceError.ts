import { IntracomError } from './IntracomError';

/**
 * No live instance serves the called service or module: none is registered,
 * or every registered one turned out to be gone when the request was sent
 * (a publish that reached no subscriber). Known at once, not at a timeout.
 */
export class NoServiceError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The function that was called. */
  readonly functionName: string;

  constructor(target: string, functionName: string, detail = 'no live instance is registered') {
    super('ERR_NO_SERVICE', `cannot call "${target}" function "${functionName}": ${detail}`);
    this.service = target;
    this.functionName = functionName;
  }
}
