/**
 * Base class of every error intracom throws or rejects with, so that
 * `err instanceof IntracomError` separates ours from everything else.
 * `code` is stable and machine-readable; `message` is for people.
 */
export class IntracomError extends Error {
  /** Stable machine-readable code, such as `ERR_VALIDATION`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.setPrototypeOf(this, new.target.prototype);
    Error.captureStackTrace?.(this, new.target);
  }

  /** The class's name (`TimeoutError`, `ValidationError`), so that logs and `String(error)` say which it is. */
  override get name(): string {
    return this.constructor.name;
  }
}
