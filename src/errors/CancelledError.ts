import { IntracomError } from './IntracomError';

/**
 * The call was cancelled before it was answered: its AbortSignal fired (the
 * serving instance is told, and the handler's own signal fires), or the
 * client was closed with the call pending.
 */
export class CancelledError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The called function. */
  readonly functionName: string;
  /** The abort reason, when the signal gave one. */
  readonly reason: unknown;

  constructor(target: string, functionName: string, why: string, reason?: unknown) {
    super('ERR_CANCELLED', `call to "${target}" function "${functionName}" was cancelled: ${why}`);
    this.service = target;
    this.functionName = functionName;
    this.reason = reason;
  }
}
