import { IntracomError } from './IntracomError';

/**
 * Bytes received from Redis could not be decoded or failed validation. It is
 * never thrown into a subscriber loop: the message is counted, logged and
 * skipped, and this error is what the `malformed` event carries. An RPC
 * call whose reply is malformed fails with it (at once, not at its timeout).
 */
export class MalformedMessageError extends IntracomError {
  /** The channel or stream the bytes came from. */
  readonly source: string;

  constructor(source: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_MALFORMED_MESSAGE', `malformed message on "${source}": ${reason}`, options);
    this.source = source;
  }
}
