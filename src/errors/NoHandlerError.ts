import { IntracomError } from './IntracomError';

/**
 * The serving instance has no handler for the called function. It answers
 * at once (never a timeout); `available` lists what it does expose.
 */
export class NoHandlerError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The function that is not exposed. */
  readonly functionName: string;
  /** The functions the instance does expose. */
  readonly available: string[];

  constructor(target: string, functionName: string, available: string[]) {
    const list = available.length === 0 ? 'none' : available.map((name) => `"${name}"`).join(', ');
    super('ERR_NO_HANDLER', `"${target}" exposes no function "${functionName}" (it exposes: ${list})`);
    this.service = target;
    this.functionName = functionName;
    this.available = available;
  }
}
