import { IntracomError } from './IntracomError';

/**
 * A connection to Redis dropped while a call was in flight: this client's
 * own (every call in flight rejects at once, not at its timeout), or that of
 * the instance handling the call (it crashed or was cut off mid-call;
 * `instanceId` names it). The call may or may not have been processed.
 */
export class ConnectionLostError extends IntracomError {
  /** The instance that went away, when it was the remote side's connection; undefined for this client's own. */
  readonly instanceId: string | undefined;

  constructor(message: string, instanceId?: string) {
    super('ERR_CONNECTION_LOST', message);
    this.instanceId = instanceId;
  }
}
