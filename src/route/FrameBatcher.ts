import type { Logger } from 'pino';
import { PayloadTooLargeError } from '../errors/PayloadTooLargeError';
import { ValidationError } from '../errors/ValidationError';
import { newFrame, type Codec } from '../envelope/codec';
import type { FrameSealer } from '../envelope/FrameSealer';

/** Writes one encoded frame to a channel (or stream) and resolves with what the write returned (a receiver count, an entry id). */
export type FrameSink<T> = (channel: string, frame: Buffer) => Promise<T>;

/**
 * Told how the write of one message ended: `error` is undefined when it was
 * written, and `written` is what the write returned. `context` is the value
 * given to {@link FrameBatcher.post}, so that one shared function can serve
 * every message without a closure or a promise per message.
 */
export type WriteDone<T, C> = (context: C, error: unknown, written: T | undefined) => void;

/**
 * Runs `writes` (calls of the sink made synchronously) so that the frames
 * they write may leave together: a route whose connection can hold its
 * writes back until `writes` returns (a corked socket) sends them in one
 * system call instead of one each.
 */
export type WriteGrouping = (writes: () => void) => void;

const ungrouped: WriteGrouping = (writes) => writes();

/** One message waiting for the flush. */
interface Entry<T> {
  message: unknown;
  /** Shared headers: consecutive entries with the same object travel as one `{ headers, payloads }` message. */
  group: object | undefined;
  context: unknown;
  done: WriteDone<T, any>;
}

interface PromiseSettlers<T> {
  resolve: (written: T) => void;
  reject: (error: unknown) => void;
}

function settlePromise<T>(settlers: PromiseSettlers<T>, error: unknown, written: T | undefined): void {
  if (error === undefined) settlers.resolve(written as T);
  else settlers.reject(error);
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
  /** Frames are split so that none exceeds this nor `maxPayloadBytes` (unless one message alone does). */
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
  /**
   * The batches waiting, by channel: a new Map each flush. A Map cleared and
   * used again is given a new hash table by V8 all the same, and the
   * replaced table keeps its batches and a link to its successor: once one
   * had reached the old generation, every later batch, and every message in
   * it, was kept through each scavenge until a mark-compact.
   */
  private pending = new Map<string, Array<Entry<T>>>();
  private scheduled = false;
  /**
   * Bytes per message of the last large frame of each channel (bounded):
   * a burst that will not fit is split before it is encoded, instead of
   * being encoded whole, found too large and encoded again in halves.
   */
  private readonly bytesPerMessage = new Map<string, number>();

  constructor(
    private readonly codec: Codec,
    private readonly limits: FrameLimits,
    private readonly sink: FrameSink<T>,
    private readonly counters: FrameCounters,
    /** Where a `done` callback that throws is reported (the others are still told, and nothing is left as an unhandled rejection). */
    private readonly logger: Logger,
    /** Signs (and encrypts) each frame once, whatever the number of messages it carries. */
    private readonly sealer?: FrameSealer,
    /** How the frames of one flush (several channels, or a burst split in pieces) are written together. */
    private readonly together: WriteGrouping = ungrouped,
  ) {}

  /** Queues a message; the promise settles when its frame is written. */
  send(channel: string, message: unknown, group?: object): Promise<T> {
    return new Promise<T>((resolve, reject) => this.post(channel, message, group, { resolve, reject }, settlePromise));
  }

  /**
   * Queues a message and calls `done(context, error, written)` when its frame
   * is written or refused. With `sliceAt`, once that many messages wait for
   * the channel they leave at once as one frame instead of at the end of the
   * tick: for request/reply traffic, where the other side can start on the
   * first slice while this side prepares the next.
   */
  post<C>(channel: string, message: unknown, group: object | undefined, context: C, done: WriteDone<T, C>, sliceAt?: number): void {
    let entries = this.pending.get(channel);
    if (entries === undefined) {
      entries = [];
      this.pending.set(channel, entries);
    }
    entries.push({ message, group, context, done });
    if (sliceAt !== undefined && entries.length >= sliceAt) {
      this.pending.delete(channel);
      this.write(channel, entries);
      return;
    }
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Sends what is queued now (used by close). */
  readonly flush = (): void => {
    this.scheduled = false;
    const batches = this.pending;
    if (batches.size === 0) return;
    this.pending = new Map();
    // a lone message makes one frame: nothing to write together, so no corking of the socket (a lone call or reply, each way)
    const written = batches.size === 1 && this.writeLone(batches);
    if (!written) this.together(() => this.writeAll(batches));
  };

  /** Writes the batch of one channel when it holds one message; false (nothing written) otherwise. */
  private writeLone(batches: Map<string, Array<Entry<T>>>): boolean {
    for (const [channel, entries] of batches) {
      if (entries.length !== 1) return false;
      this.write(channel, entries);
    }
    return true;
  }

  private writeAll(batches: Map<string, Array<Entry<T>>>): void {
    const most = this.limits.maxFrameMessages ?? Infinity;
    for (const [channel, entries] of batches) {
      if (entries.length <= most) this.write(channel, entries);
      else for (let i = 0; i < entries.length; i += most) this.write(channel, entries.slice(i, i + most));
    }
  }

  private write(channel: string, entries: Array<Entry<T>>): void {
    const limit = Math.min(this.limits.maxFrameBytes, this.limits.maxPayloadBytes);
    const perMessage = entries.length > 1 ? this.bytesPerMessage.get(channel) : undefined;
    if (perMessage !== undefined) {
      // a margin for messages larger than the last frame's average; a piece that still does not fit is halved below
      const fitting = Math.max(1, Math.floor((limit * 0.8) / perMessage));
      if (entries.length > fitting) {
        for (let i = 0; i < entries.length; i += fitting) this.write(channel, entries.slice(i, i + fitting));
        return;
      }
    }
    let frame: Buffer;
    try {
      frame = this.codec.encode(wireFrame(entries));
    } catch (error) {
      if (entries.length === 1) return this.tell(entries[0], notEncodable(channel, error), undefined);
      return this.writeHalves(channel, entries);
    }
    if (entries.length > 1 && (perMessage !== undefined || frame.length >= limit / 4)) {
      if (this.bytesPerMessage.size >= 1024 && perMessage === undefined) this.bytesPerMessage.clear();
      this.bytesPerMessage.set(channel, frame.length / entries.length);
    }
    if (entries.length > 1 && frame.length > limit) {
      // a receiver refuses a frame over maxPayloadBytes whatever maxFrameBytes says, so a frame never exceeds either once it can be split
      return this.writeHalves(channel, entries);
    }
    if (frame.length > this.limits.maxPayloadBytes) {
      return this.tell(entries[0], new PayloadTooLargeError(`a message to "${channel}"`, frame.length, this.limits.maxPayloadBytes), undefined);
    }
    if (this.sealer !== undefined) frame = this.sealer.seal(frame, channel);
    this.counters.framesSent += 1;
    this.counters.messagesSent += entries.length;
    const first = entries[0];
    const count = entries.length;
    const each = released(entries) ? undefined : entries;
    this.sink(channel, frame).then(
      (written) => this.tellAll(first, each, count, undefined, written),
      (error: unknown) => this.tellAll(first, each, count, error ?? new Error('the write failed'), undefined),
    );
  }

  /** Tells every message of a written frame: each of `entries`, or `count` times `first` when they all share its `context` and `done`. */
  private tellAll(first: Entry<T>, entries: Array<Entry<T>> | undefined, count: number, error: unknown, written: T | undefined): void {
    if (entries === undefined) for (let i = 0; i < count; i++) this.tell(first, error, written);
    else for (const entry of entries) this.tell(entry, error, written);
  }

  private tell(entry: Entry<T>, error: unknown, written: T | undefined): void {
    try {
      entry.done(entry.context, error, written);
    } catch (thrown) {
      this.logger.error({ err: thrown }, 'a write callback threw; the other messages of its frame were still told');
    }
  }

  private writeHalves(channel: string, entries: Array<Entry<T>>): void {
    const middle = entries.length >> 1;
    this.write(channel, entries.slice(0, middle));
    this.write(channel, entries.slice(middle));
  }
}

/**
 * The frame of some entries, built in one array (not copied): plain entries
 * as they are, runs of one group as `{ headers, payloads }`.
 */
function wireFrame<T>(entries: Array<Entry<T>>): unknown[] {
  const messages = newFrame();
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

/**
 * Lets go of the messages of entries whose frame is encoded, and tells
 * whether they all share the first one's `context` and `done` (a burst of
 * events published with `publishAndForget`), in which case the first entry
 * alone can tell them all. A frame's write ends when Redis answers: until
 * then the messages (an event's payload, its strings) would outlive young
 * collections and be copied, then promoted, for nothing.
 */
function released<T>(entries: Array<Entry<T>>): boolean {
  const { context, done } = entries[0];
  let shared = true;
  for (const entry of entries) {
    entry.message = undefined;
    entry.group = undefined;
    if (entry.context !== context || entry.done !== done) shared = false;
  }
  return shared;
}

/**
 * What a message the codec cannot encode is refused with: a ValidationError
 * (nothing was sent), with the codec's own error as its cause. The callers
 * check the values msgpack cannot carry first and name where they are; this
 * catches what a custom codec refuses.
 */
function notEncodable(channel: string, error: unknown): ValidationError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ValidationError(`a message to "${channel}" cannot be encoded: ${reason}`, { cause: error });
}
