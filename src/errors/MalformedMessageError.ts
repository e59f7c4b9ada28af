import { IntracomError } from './IntracomError';

/**
 * Bytes received from Redis could not be decoded or failed validation. It is
 * never thrown into a subscriber loop: the message is counted, logged and
 * skipped, and this error is what the `malformed` event carries. An RPC
 * call whose reply is malformed fails with it (at once, not at its timeout).
 * One error
 * may stand for several invalid messages received together on one source
 * (`count`), so that a frame of a million invalid messages costs one report,
 * not a million.
 */
export class MalformedMessageError extends IntracomError {
  /** The channel or stream the bytes came from. */
  readonly source: string;
  /** How many invalid messages this report stands for (1 for a frame that did not decode). */
  readonly count: number;
  /** Why, for the first messages of `count` (at most a few: the rest are counted, not described). */
  readonly reasons: readonly string[];

  constructor(source: string, reason: string, options?: { cause?: unknown; count?: number; reasons?: readonly string[] }) {
    const count = options?.count ?? 1;
    const reasons = options?.reasons ?? [reason];
    const said = count === 1 ? reason : `${count} malformed messages received together; the first ${reasons.length === 1 ? 'reason' : `${reasons.length} reasons`}: ${reasons.join('; ')}`;
    super('ERR_MALFORMED_MESSAGE', `malformed message on "${source}": ${said}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.source = source;
    this.count = count;
    this.reasons = reasons;
  }
}
