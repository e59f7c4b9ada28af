import { IntracomError } from './IntracomError';

/**
 * The memory route's snapshot file could not be read or written: unreadable
 * bytes, a shape that is not a snapshot, or a file system error. Raised by
 * `connect()` (restore) or `close()` (save) at once, so that a damaged file
 * never surfaces later as a lost or half-restored queue. A missing file is
 * not an error: it restores nothing.
 */
export class SnapshotError extends IntracomError {
  /** The snapshot file concerned. */
  readonly file: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_SNAPSHOT', `memory snapshot "${file}": ${reason}`, options);
    this.file = file;
  }
}
