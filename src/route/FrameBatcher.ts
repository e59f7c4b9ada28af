import { PayloadTooLargeError } from '../errors/PayloadTooLargeError';
import { encodeFrame, type Codec } from '../envelope/codec';
import type { RouteStats } from './Route';

/** Writes one encoded frame to a channel and resolves with the receiver count. */
export type FrameSink = (channel: string, frame: Buffer) => Promise<number>;

interface Pending {
  messages: unknown[];
  settlers: Array<[(receivers: number) => void, (error: unknown) => void]>;
}

/** Limits of the batcher. */
export interface FrameLimits {
  /** A single message encoding to more bytes than this is refused. */
  maxPayloadBytes: number;
  /** Frames are split so that none exceeds this (unless one message alone does). */
  maxFrameBytes: number;
}

/**
 * Coalesces every message sent to one channel within one tick into one frame,
 * flushed from a microtask: a lone message leaves at the end of the current
 * tick (no added latency) and a burst costs one write and one parse per frame
 * instead of per message. Frames over `maxFrameBytes` are split so that a
 * burst cannot trip Redis's pub/sub output-buffer limit; order per channel is
 * kept because frames of one channel are written in order on one connection.
 */
export class FrameBatcher {
  private pending = new Map<string, Pending>();
  private scheduled = false;

  constructor(
    private readonly codec: Codec,
    private readonly limits: FrameLimits,
    private readonly sink: FrameSink,
    private readonly counters: RouteStats,
  ) {}

  send(channel: string, message: unknown): Promise<number> {
    let batch = this.pending.get(channel);
    if (batch === undefined) {
      batch = { messages: [], settlers: [] };
      this.pending.set(channel, batch);
    }
    batch.messages.push(message);
    const promise = new Promise<number>((resolve, reject) => batch.settlers.push([resolve, reject]));
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
    for (const [channel, batch] of batches) this.write(channel, batch.messages, batch.settlers);
  };

  private write(channel: string, messages: unknown[], settlers: Pending['settlers']): void {
    let frame: Buffer;
    try {
      frame = encodeFrame(this.codec, messages);
    } catch (error) {
      if (messages.length === 1) return settlers[0][1](error);
      return this.writeHalves(channel, messages, settlers);
    }
    if (frame.length > this.limits.maxFrameBytes && messages.length > 1) return this.writeHalves(channel, messages, settlers);
    if (frame.length > this.limits.maxPayloadBytes) {
      return settlers[0][1](new PayloadTooLargeError(`a message to "${channel}"`, frame.length, this.limits.maxPayloadBytes));
    }
    this.counters.framesSent += 1;
    this.counters.messagesSent += messages.length;
    this.sink(channel, frame).then(
      (receivers) => {
        for (const [resolve] of settlers) resolve(receivers);
      },
      (error: unknown) => {
        for (const [, reject] of settlers) reject(error);
      },
    );
  }

  private writeHalves(channel: string, messages: unknown[], settlers: Pending['settlers']): void {
    const middle = messages.length >> 1;
    this.write(channel, messages.slice(0, middle), settlers.slice(0, middle));
    this.write(channel, messages.slice(middle), settlers.slice(middle));
  }
}
