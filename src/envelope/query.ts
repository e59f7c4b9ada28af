import { newQueryId } from './ids';
import { QueryRoute, QueryState, QueryType, type Query } from './types';

/** Nanoseconds from a monotonic clock, as a number (exact to well below a microsecond for ~104 days of uptime). */
export function monotonicNs(): number {
  return Number(process.hrtime.bigint());
}

/** What a caller supplies to build a query; the rest is filled in. */
export interface CreateQueryInput {
  serviceNameSource: string;
  serviceNameDest: string;
  type: QueryType;
  action: number | string;
  query?: unknown;
  route?: QueryRoute;
  timeout_ms: number;
  queryId?: string;
}

/** Builds a PENDING query envelope with its id and timestamps. */
export function createQuery(input: CreateQueryInput): Query {
  return {
    queryId: input.queryId ?? newQueryId(),
    serviceNameSource: input.serviceNameSource,
    serviceNameDest: input.serviceNameDest,
    route: input.route ?? QueryRoute.REDIS,
    type: input.type,
    action: input.action,
    query: input.query ?? null,
    response: null,
    result: null,
    state: QueryState.PENDING,
    query_ts: monotonicNs(),
    response_ts: 0,
    query_ms: Date.now(),
    timeout_ms: input.timeout_ms,
    processAttempts: 0,
  };
}
