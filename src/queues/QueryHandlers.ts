import type { Sender } from '../envelope/sender';
import type { Query, QueryType } from '../envelope/types';

/** What a query handler receives beside the query's parameters. */
export interface QueryContext {
  /** The query's id: the key to make a handler idempotent. */
  queryId: string;
  /** Delivery type. */
  type: QueryType;
  /** The action asked for. */
  action: number | string;
  /** The sending service, as the envelope claims it (see `sender` for whether it was verified). */
  serviceNameSource: string;
  /**
   * Who sent the query as this receiver knows it: with authentication on
   * (docs/security.md), `verified` is true and `service` is the signer of the
   * frame (never another service than `serviceNameSource`: a frame claiming
   * otherwise is refused before any handler runs). The local shortcut, which
   * never leaves the process, is verified too.
   */
  sender: Sender;
  /** Which attempt this is (1 on the first delivery; more after a crash or a failure). */
  processAttempts: number;
  /** The whole envelope, as received. */
  envelope: Query;
  /** Fires when the caller gave up (ASYNC and SYNC) or the instance is closing. */
  signal: AbortSignal;
  /**
   * FIRE_AND_FORGET and BROADCAST: renews this query's claim now and, with
   * `queues.autoExtend` off, keeps renewing it until `ms` (default
   * `visibilityTimeoutMs`) from now. Resolves false when the claim was
   * already lost (another instance may be processing the query): a handler
   * can check it before an effect that must not happen twice. ASYNC and SYNC
   * hold no claim (their caller's timeout governs): it resolves true.
   */
  extend(ms?: number): Promise<boolean>;
}

/**
 * Handles the queries of one action. Its result is the query's `result`
 * (ASYNC and SYNC; ignored for FIRE_AND_FORGET and BROADCAST). Throwing marks
 * the query ERROR (ASYNC, SYNC) or leaves it to be redelivered (durable types).
 */
export type QueryHandler<Q = unknown, R = unknown> = (query: Q, context: QueryContext) => R | Promise<R>;

/** The handlers of one instance, by action. */
export class QueryHandlers {
  private readonly byAction = new Map<string, QueryHandler>();

  set(action: number | string, handler: QueryHandler): void {
    this.byAction.set(String(action), handler);
  }

  delete(action: number | string): boolean {
    return this.byAction.delete(String(action));
  }

  get(action: number | string): QueryHandler | undefined {
    return this.byAction.get(String(action));
  }

  actions(): string[] {
    return [...this.byAction.keys()];
  }
}
