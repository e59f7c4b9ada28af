import { IntracomError } from './IntracomError';

/** An operation needs a connected client: it was not connected yet, or it was closed. */
export class NotConnectedError extends IntracomError {
  /**
   * @param operation what was attempted
   * @param status the state that prevents it (`idle`, `closed`, ...)
   * @param hint what to do about it; by default, what the state calls for
   */
  constructor(operation: string, status: string, hint?: string) {
    super('ERR_NOT_CONNECTED', `cannot ${operation}: the client is ${status}; ${hint ?? ADVICE[status] ?? 'call connect() first'}`);
  }
}

/** What to do, per state: a client that reconnects by itself must not be told to connect. */
const ADVICE: Record<string, string> = {
  idle: 'call connect() first',
  connecting: 'wait for connect() to resolve',
  reconnecting: "the connection to Redis dropped and the client is reconnecting by itself; nothing was sent: retry after its 'ready' event",
  closing: 'create a new client',
  closed: 'create a new client',
};
