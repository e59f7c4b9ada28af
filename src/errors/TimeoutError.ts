import { IntracomError } from './IntracomError';

/**
 * An RPC call got no answer within its timeout. The request may or may not
 * have been processed by the remote instance; only the time ran out.
 */
export class TimeoutError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The called function. */
  readonly functionName: string;
  /** The timeout that ran out, in ms. */
  readonly timeoutMs: number;

  constructor(target: string, functionName: string, timeoutMs: number) {
    super('ERR_TIMEOUT', `call to "${target}" function "${functionName}" got no answer within ${timeoutMs} ms (timeoutMs)`);
    this.service = target;
    this.functionName = functionName;
    this.timeoutMs = timeoutMs;
  }
}
