import { IntracomError } from './IntracomError';

/**
 * What was asked is not allowed to this service: Redis refused the command
 * under the connection's ACL user (`NOPERM`: a key, channel or command its
 * rules leave out), or every instance of the called target names its callers
 * and this service is not among them. Not retried: asking again gets the
 * same answer until the ACL or the callee's `callers` change.
 */
export class PermissionError extends IntracomError {
  /** What was being done, such as `call "calc" function "add"` or `get ic:{calc}:var:price`. */
  readonly operation: string;

  constructor(operation: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_PERMISSION', `${operation} is not allowed: ${reason}`, options);
    this.operation = operation;
  }

  /** True for Redis's ACL refusal (`NOPERM ...`, or a script's "can't run this command"/"no permissions"). */
  static isRefusal(error: unknown): boolean {
    if (!(error instanceof Error)) return false;
    const message = error.message;
    return message.startsWith('NOPERM') || message.includes("user executing the script can't run this command") || message.includes('no permissions to access');
  }

  /** `error` as a PermissionError when it is Redis's ACL refusal, otherwise `error` itself. */
  static from(operation: string, error: unknown): unknown {
    return PermissionError.isRefusal(error) ? new PermissionError(operation, `Redis refused it under this connection's ACL user (${(error as Error).message})`, { cause: error }) : error;
  }
}
