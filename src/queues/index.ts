export { type QueryHandler, type QueryContext } from './QueryHandlers';
export { type QueryHandle, type QueryRequestOptions } from './QueryRequests';
export { type DurableSendOptions, type QueueInspection, type QueryQueueStats } from './QueryQueues';
export { type QueryQueueOptions, DEFAULT_QUERY_QUEUE_OPTIONS } from './QueryQueueOptions';
export { type DeadLetter, type QueueConsumerStats } from './QueueConsumer';
