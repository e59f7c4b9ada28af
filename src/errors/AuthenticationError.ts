import { IntracomError } from './IntracomError';

/**
 * A frame or a stored value failed authentication: no signature where one is
 * required, a signature that does not verify, a sender or key id nobody
 * trusts, a timestamp outside the replay window, a frame id seen before, a
 * claimed sender other than the signer, or a ciphertext that does not
 * decrypt. Received frames are never thrown into a subscriber loop: they are
 * counted (`stats().authRefused`), logged (rate-limited) and dropped, and
 * this error is what the `malformed` event carries. Reading a confidential
 * variable whose stored value fails the check throws it.
 */
export class AuthenticationError extends IntracomError {
  /** The channel, stream or key the bytes came from. */
  readonly source: string;

  constructor(source: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_AUTHENTICATION', `refused on "${source}": ${reason}`, options);
    this.source = source;
  }
}
