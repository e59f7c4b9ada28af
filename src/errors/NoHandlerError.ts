import { IntracomError } from './IntracomError';

/**
 * The serving instance has no handler for the called function (or, for
 * SYNC/ASYNC, the query's action). It answers at once (never a timeout);
 * `available` lists what it does expose.
 */
export class NoHandlerError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The function (or, for a query, the action) that is not exposed. */
  readonly functionName: string;
  /** The functions (or actions) the instance does expose. */
  readonly available: string[];

  /**
   * @param kind what `functionName` names: an RPC function, or the action of a SYNC/ASYNC query
   */
  constructor(target: string, functionName: string, available: string[], kind: 'function' | 'action' = 'function') {
    const list = available.length === 0 ? 'none' : available.map((name) => JSON.stringify(name)).join(', ');
    super('ERR_NO_HANDLER', kind === 'function' ? `"${target}" exposes no function ${JSON.stringify(functionName)} (it exposes: ${list})` : `"${target}" handles no action ${JSON.stringify(functionName)} (it handles: ${list})`);
    this.service = target;
    this.functionName = functionName;
    this.available = available;
  }
}
