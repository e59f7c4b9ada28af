/**
 * The query envelope of OpenTera's integration layer and the shape of an
 * event. Field names follow OpenTera's; `timeout_ms` corrects its `timout_ms`
 * misspelling (decoding refuses `timout_ms` rather than guess: see validate.ts).
 */

/** How a query is delivered and whether an answer is awaited. */
export enum QueryType {
  /** Exactly one instance processes it, durably; no answer. */
  FIRE_AND_FORGET = 'FIRE_AND_FORGET',
  /** Every live instance of the destination processes it; no answer. */
  BROADCAST = 'BROADCAST',
  /** Exactly one instance processes it; the caller holds a handle whose state changes. */
  ASYNC = 'ASYNC',
  /** Exactly one instance processes it; the caller awaits the result. */
  SYNC = 'SYNC',
}

/** Where a query stands. */
export enum QueryState {
  PENDING = 'PENDING',
  DONE = 'DONE',
  ERROR = 'ERROR',
}

/** Which route carries a query. */
export enum QueryRoute {
  MEMORY = 'memory',
  REDIS = 'redis',
  LOCAL = 'local',
  MQTT = 'mqtt',
}

/** The outcome of processing a query (OpenTera's `ActionResult`): success, or an error described as data. */
export interface ActionResult {
  /** True when the handler succeeded. */
  ok: boolean;
  /** Error class name on the remote side (`RemoteError`, `NoHandlerError`, ...), when `ok` is false. */
  errorName?: string;
  /** Stable error code, when any. */
  code?: string;
  /** Human-readable message, when `ok` is false. */
  message?: string;
  /** Extra data attached to the error. */
  data?: unknown;
}

/** The query envelope, as sent and as returned (the ASYNC handle is this object). */
export interface Query {
  /** Unique id linking the response to the query. */
  queryId: string;
  /** Service that sent it. */
  serviceNameSource: string;
  /** Service it is for. */
  serviceNameDest: string;
  /** Route used. */
  route: QueryRoute;
  /** Delivery type. */
  type: QueryType;
  /** Action to perform; its meaning is the destination service's. */
  action: number | string;
  /** Parameters of the action. */
  query: unknown;
  /** Outcome, once processed. */
  response: ActionResult | null;
  /** Result value, once processed. */
  result: unknown;
  /** PENDING, then DONE or ERROR. */
  state: QueryState;
  /** Creation time, nanoseconds from a monotonic clock (`process.hrtime.bigint()`), as a number. */
  query_ts: number;
  /** Response time, nanoseconds on the same monotonic clock; 0 while pending. */
  response_ts: number;
  /** Creation wall time, ms since the epoch (what timeouts count from). */
  query_ms: number;
  /** Time allowed, in ms (OpenTera's `timout_ms`, spelling corrected). */
  timeout_ms: number;
  /** How many times processing was attempted. */
  processAttempts: number;
}

/** The headers of an event. */
export interface EventHeaders {
  /** The event's name: its topic (`flow.starting`, `module.x.events`). */
  name: string;
  /** When it was raised, ISO 8601. */
  createdAt: string;
  /** Service that raised it. */
  serviceName: string;
}

/** An event as it crosses the wire: headers beside an arbitrary payload. */
export interface EventMessage<P = unknown> {
  /** Who published it and when: `name` (the topic), `createdAt`, `serviceName`. */
  headers: EventHeaders;
  /** What the publisher passed to `publish`. */
  payload: P;
}

/**
 * Events published by one process on one topic within one tick (and one
 * millisecond) travel as one batch sharing their headers; receivers hand
 * each payload to handlers as its own event.
 */
export interface EventBatch {
  headers: EventHeaders;
  payloads: unknown[];
}
