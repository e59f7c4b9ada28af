import { CancelledError } from '../errors/CancelledError';
import type { Sender } from '../envelope/sender';
import { TimeoutError } from '../errors/TimeoutError';

/** What a handler receives beside its arguments. */
export interface CallContext {
  /** Service key of the caller, as the request claims it (see `sender` for whether it was verified). */
  readonly callerService: string;
  /**
   * Who sent the request as this receiver knows it: with authentication on
   * (docs/security.md), `verified` is true and `service` is the signer of the
   * frame, which is never another service than `callerService` (a frame
   * claiming otherwise is refused before any handler runs).
   */
  readonly sender: Sender;
  /** Instance id of the caller. */
  readonly callerInstance: string;
  /** Id of this request (the envelope's `queryId`). */
  readonly requestId: string;
  /** The function called. */
  readonly functionName: string;
  /** The service key or module name called. */
  readonly target: string;
  /** When the caller stops waiting, ms since the epoch (this instance's clock). */
  readonly deadline: number;
  /**
   * Fires when the caller cancels (reason: CancelledError), when the
   * deadline passes (reason: TimeoutError) or when this instance closes
   * before the handler finished (reason: CancelledError).
   */
  readonly signal: AbortSignal;
}

/**
 * The context of one request being handled. Its AbortController and its
 * deadline timer are only created when the handler reads `signal`, so a
 * handler that does not care costs nothing for them.
 */
export class RequestContext implements CallContext {
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abortReason: unknown;

  constructor(
    readonly callerService: string,
    readonly callerInstance: string,
    readonly requestId: string,
    readonly functionName: string,
    readonly target: string,
    readonly deadline: number,
    private readonly timeoutMs: number,
    readonly sender: Sender,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.abortReason !== undefined) this.controller.abort(this.abortReason);
      else {
        const remaining = this.deadline - Date.now();
        if (remaining <= 0) this.controller.abort(this.timeoutReason());
        else {
          this.timer = setTimeout(() => this.abort(this.timeoutReason()), remaining);
          this.timer.unref();
        }
      }
    }
    return this.controller.signal;
  }

  /** True once the request was cancelled or timed out. */
  get aborted(): boolean {
    return this.abortReason !== undefined || this.deadline <= Date.now();
  }

  /** Fires the signal (once). */
  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.controller?.abort(reason);
  }

  /** Cancels because the caller asked to. */
  cancel(why: string): void {
    this.abort(new CancelledError(this.target, this.functionName, why));
  }

  /** Releases the deadline timer (the handler finished). */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private timeoutReason(): TimeoutError {
    return new TimeoutError(this.target, this.functionName, this.timeoutMs);
  }
}
