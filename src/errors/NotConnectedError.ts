import { IntracomError } from './IntracomError';

/** An operation needs a connected client: it was not connected yet, or it was closed. */
export class NotConnectedError extends IntracomError {
  /**
   * @param operation what was attempted
   * @param status the state that prevents it (`idle`, `closed`, ...)
   * @param hint what to do about it; by default, to connect first unless the state is `closed`
   */
  constructor(operation: string, status: string, hint?: string) {
    const advice = hint ?? (status === 'closed' ? 'create a new client' : 'call connect() first');
    super('ERR_NOT_CONNECTED', `cannot ${operation}: the client is ${status}; ${advice}`);
  }
}
