import { IntracomError } from './IntracomError';

/** A message encodes to more bytes than the configured limit; it was not sent. */
export class PayloadTooLargeError extends IntracomError {
  /** Encoded size in bytes. */
  readonly size: number;
  /** The limit in force (`limits.maxPayloadBytes`). */
  readonly limit: number;

  constructor(what: string, size: number, limit: number) {
    super('ERR_PAYLOAD_TOO_LARGE', `${what} encodes to ${size} bytes, over the limit of ${limit} bytes (limits.maxPayloadBytes); it was not sent`);
    this.size = size;
    this.limit = limit;
  }
}
