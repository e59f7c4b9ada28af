export { QueryType, QueryState, QueryRoute, type ActionResult, type Query, type EventHeaders, type EventMessage, type EventBatch } from './types';
export { type Codec, MsgpackCodec, PROTOCOL_VERSION, encodeFrame, decodeFrame } from './codec';
export { invalidEventReason, invalidQueryReason, isEventMessage, isQuery } from './validate';
export { createQuery, monotonicNs, type CreateQueryInput } from './query';
