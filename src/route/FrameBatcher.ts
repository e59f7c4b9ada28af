import { PayloadTooLargeError } from '../errors/PayloadTooLargeError';
import { encodeFrame, type Codec } from '../envelope/codec';

/** Writes one encoded frame to a channel (or stream) and resolves with what the write returned (a receiver count, an entry id). */
export type FrameSink<T> = (channel: string, frame: Buffer) => Promise<T>;

/** One message waiting for the flush. */
interface Entry<T> {
  message: unknown;
  /** Shared headers: consecutive entries with the same object travel as one `{ headers, payloads }` message. */
  group: object | undefined;
  resolve: (written: T) => void;
  reject: (error: unknown) => void;
}

/** The counters a batcher keeps. */
export interface FrameCounters {
  framesSent: number;
  messagesSent: number;
}

/** Limits of the batcher. */
export interface FrameLimits {
  /** A single message encoding to more bytes than this is refused. */
  maxPayloadBytes: number;
  /** Frames are split so that none exceeds this (unless one message alone does). */
  maxFrameBytes: number;
  /** Frames are split so that none holds more messages than this. @default unlimited */
  maxFrameMessages?: number;
}

/**
 * Coalesces every message sent to one channel (or stream) within one tick into one frame,
 * flushed from a microtask: a lone message leaves at the end of the current
 * tick (no added latency) and a burst costs one write and one parse per frame
 * instead of per message. Messages sent with the same `group` object (an
 * event's headers) are factored into one `{ headers, payloads }` message, so a
 * burst of events pays for its headers once. Frames over `maxFrameBytes` are
 * split so that a burst cannot trip Redis's pub/sub output-buffer limit; a
 * single message over `maxPayloadBytes` is refused alone. Order per channel is
 * kept: frames of one channel are written in order on one connection.
 */
export class FrameBatcher<T = number> {
  private pending = new Map<string, Array<Entry<T>>>();
  private scheduled = false;

  constructor(
    private readonly codec: Codec,
    private readonly limits: FrameLimits,
    private readonly sink: FrameSink<T>,
    private readonly counters: FrameCounters,
  ) {}

  send(channel: string, message: unknown, group?: object): Promise<T> {
    let entries = this.pending.get(channel);
    if (entries === undefined) {
      entries = [];
      this.pending.set(channel, entries);
    }
    const queue = entries;
    const promise = new Promise<T>((resolve, reject) => void queue.push({ message, group, resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
    return promise;
  }

  /** Sends what is queued now (used by close). */
  readonly flush = (): void => {
    this.scheduled = false;
    const batches = this.pending;
    if (batches.size === 0) return;
    this.pending = new Map();
    const most = this.limits.maxFrameMessages ?? Infinity;
    for (const [channel, entries] of batches) {
      if (entries.length <= most) this.write(channel, entries);
      else for (let i = 0; i < entries.length; i += most) this.write(channel, entries.slice(i, i + most));
    }
  };

  private write(channel: string, entries: Array<Entry<T>>): void {
    let frame: Buffer;
    try {
      frame = encodeFrame(this.codec, wireMessages(entries));
    } catch (error) {
      if (entries.length === 1) return entries[0].reject(error);
      return this.writeHalves(channel, entries);
    }
    if (frame.length > this.limits.maxFrameBytes && entries.length > 1) return this.writeHalves(channel, entries);
    if (frame.length > this.limits.maxPayloadBytes) {
      return entries[0].reject(new PayloadTooLargeError(`a message to "${channel}"`, frame.length, this.limits.maxPayloadBytes));
    }
    this.counters.framesSent += 1;
    this.counters.messagesSent += entries.length;
    this.sink(channel, frame).then(
      (written) => {
        for (const entry of entries) entry.resolve(written);
      },
      (error: unknown) => {
        for (const entry of entries) entry.reject(error);
      },
    );
  }

  private writeHalves(channel: string, entries: Array<Entry<T>>): void {
    const middle = entries.length >> 1;
    this.write(channel, entries.slice(0, middle));
    this.write(channel, entries.slice(middle));
  }
}

/** The messages of a frame: plain entries as they are, runs of one group as `{ headers, payloads }`. */
function wireMessages<T>(entries: Array<Entry<T>>): unknown[] {
  const messages: unknown[] = [];
  let run: { headers: object; payloads: unknown[] } | undefined;
  for (const entry of entries) {
    if (entry.group === undefined) {
      run = undefined;
      messages.push(entry.message);
    } else if (run !== undefined && run.headers === entry.group) {
      run.payloads.push(entry.message);
    } else {
      run = { headers: entry.group, payloads: [entry.message] };
      messages.push(run);
    }
  }
  return messages;
}
