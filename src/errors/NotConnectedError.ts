import { IntracomError } from './IntracomError';

/** An operation needs a connected client: call `connect()` first, or the client was closed. */
export class NotConnectedError extends IntracomError {
  constructor(operation: string, status: string) {
    super('ERR_NOT_CONNECTED', `cannot ${operation}: the client is ${status}; call connect() first`);
  }
}
