/**
 * The coalescing of the reference design for the `rpc-*`
 * benchmarks: every message one process publishes to one channel within one
 * tick leaves as one msgpackr array (records on), flushed from a microtask.
 * No slicing, no limits, no validation: the least code that batches.
 */
import type Redis from 'ioredis';
import type { Packr } from 'msgpackr';

/** Returns `send(channel, message)`, batching per channel and tick. */
export function coalescingPublisher(publisher: Redis, packr: Packr): (channel: string, message: unknown) => void {
  const queued = new Map<string, unknown[]>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    for (const [channel, messages] of queued) void publisher.publish(channel, packr.pack(messages));
    queued.clear();
  };
  return (channel, message) => {
    let messages = queued.get(channel);
    if (messages === undefined) queued.set(channel, (messages = []));
    messages.push(message);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
}
