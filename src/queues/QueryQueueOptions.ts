/** Settings of the durable query types (FIRE_AND_FORGET and BROADCAST). */
export interface QueryQueueOptions {
  /**
   * How long a query's claim lives without renewal, in ms. The instance that
   * holds a query renews its claim every third of this time while it lives
   * (see `autoExtend`); when its process dies, stalls or loses Redis, another
   * instance takes the query this long after the last renewal. Queries read
   * and waiting their turn are renewed too: the time counts per query, not
   * per batch. At most 2147483647 (the longest Node.js timer).
   * @default 30000
   */
  visibilityTimeoutMs?: number;
  /**
   * Keep renewing the claim of a running query for as long as its handler
   * runs (as BullMQ renews a job's lock). When false, a handler has
   * `visibilityTimeoutMs` from its start, plus what it asks with
   * `context.extend(ms)`; past that the query goes to another instance.
   * @default true
   */
  autoExtend?: boolean;
  /**
   * Deliveries of one query before it goes to the dead-letter store.
   * @default 5
   */
  maxAttempts?: number;
  /**
   * How long the record that a query was processed is kept, in ms: within
   * this time a second delivery of the same `queryId` is suppressed.
   * @default 86400000 (24 h)
   */
  dedupeTtlMs?: number;
  /**
   * BROADCAST: an instance unseen for this long (no heartbeat) stops holding
   * the broadcast queue back; if it comes back later it starts from new
   * broadcasts only. An instance that restarts within it gets what it missed.
   * @default 600000 (10 min)
   */
  broadcastRetentionMs?: number;
  /**
   * Dead letters kept per service: past it the oldest are dropped, and
   * counted (`deadLettersDropped` in `queueStatus()` and `intracom status`),
   * so that a flood of garbage or of failing queries cannot grow Redis
   * without limit.
   * @default 10000
   */
  maxDeadLetters?: number;
  /**
   * Raw bytes of a malformed entry kept in its dead letter at most (the rest
   * is cut; `rawBytes` gives the original size).
   * @default 4096
   */
  maxDeadLetterRawBytes?: number;
  /**
   * Entries read at once.
   * @default 100
   */
  batchSize?: number;
  /**
   * How long a read waits for new queries before checking for abandoned ones, in ms.
   * At most 5000: `close()` waits for a read in progress.
   * @default 1000
   */
  blockMs?: number;
  /**
   * Refuse FIRE_AND_FORGET and BROADCAST to a service that never ran a
   * consumer (NoServiceError), instead of storing queries nobody may ever read.
   * @default true
   */
  requireKnownDestination?: boolean;
  /**
   * Serve the durable queues of this instance's service: `true` starts the
   * consumers (creating the service's streams and consumer groups) at
   * `connect()`; `'when-handled'` starts them once a query handler is
   * registered with `handle()`, so that a caller-only client creates
   * nothing durable; `false` never consumes.
   * @default 'when-handled'
   */
  consume?: boolean | 'when-handled';
  /**
   * How long `fireAndForget` and `broadcast` wait, in ms, for a client that
   * is reconnecting by itself to be ready again before they give up with
   * NotConnectedError (nothing was sent). A short outage (a Redis restart, a
   * failover) is ridden out; a long one fails in bounded time. 0 fails at
   * once, like the other commands.
   * @default 10000
   */
  sendWaitMs?: number;
}

/** The defaults of {@link QueryQueueOptions}. */
export const DEFAULT_QUERY_QUEUE_OPTIONS: Required<QueryQueueOptions> = {
  visibilityTimeoutMs: 30_000,
  autoExtend: true,
  maxAttempts: 5,
  dedupeTtlMs: 24 * 60 * 60 * 1000,
  broadcastRetentionMs: 10 * 60 * 1000,
  maxDeadLetters: 10_000,
  maxDeadLetterRawBytes: 4096,
  batchSize: 100,
  blockMs: 1000,
  requireKnownDestination: true,
  consume: 'when-handled',
  sendWaitMs: 10_000,
};
