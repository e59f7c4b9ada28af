import { decodeFrame, type Codec } from '../envelope/codec';
import type { FrameSealer } from '../envelope/FrameSealer';
import { attest } from '../envelope/sender';
import { AuthenticationError } from '../errors/AuthenticationError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import type { RateLimitedLog } from '../log/RateLimitedLog';
import type { MessageListener, PatternListener, RouteStats, Unsubscribe } from './Route';

/** The underlying subscription calls of a route, each for one or more channels (or patterns) at once. */
export interface SubscriptionBackend {
  subscribe(channels: string[]): Promise<void>;
  unsubscribe(channels: string[]): Promise<void>;
  psubscribe(patterns: string[]): Promise<void>;
  punsubscribe(patterns: string[]): Promise<void>;
}

type Operation = keyof SubscriptionBackend;

/** One subscription call waiting for the flush. */
interface Pending {
  operation: Operation;
  name: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Channels (or patterns) one backend call carries at the most: far below
 * Redis's limit on a command's arguments (proto-max-multibulk-len, about a
 * million), and small enough that one command does not hold the server for
 * long.
 */
export const MAX_NAMES_PER_CALL = 1024;

/** What a seal may add to a frame: its header (ids of at most 256 bytes, the channel name), the signature, an IV and a tag. */
const SEAL_ALLOWANCE = 4096;

interface Entry<L> {
  /**
   * One token per registration, so the same function added twice is two
   * listeners. Replaced, never changed, on every add and removal: a frame's
   * delivery walks the array it started with, without copying it.
   */
  listeners: ReadonlyArray<{ fn: L }>;
  ready: Promise<void>;
}

/**
 * Many listeners per channel over one underlying subscription per channel
 * (and per pattern), and the decode-and-dispatch of received frames, shared by
 * every route. The subscription calls of one tick are coalesced: consecutive
 * calls of one kind (subscribe, unsubscribe, ...) go to the backend as one
 * call of up to MAX_NAMES_PER_CALL names, in the order they were made, so
 * subscribing K channels at once costs about one SUBSCRIBE of K channels.
 * A frame that does not decode is counted, reported and skipped; a listener
 * that throws is logged; neither can stop delivery of what follows.
 */
export class SubscriptionTable {
  private readonly channels = new Map<string, Entry<MessageListener>>();
  private readonly patterns = new Map<string, Entry<PatternListener>>();
  private queued: Pending[] = [];

  constructor(
    private readonly backend: SubscriptionBackend,
    private readonly codec: Codec,
    private readonly maxFrameBytes: () => number,
    private readonly counters: RouteStats,
    private readonly warnings: RateLimitedLog,
    private readonly onMalformed: (error: MalformedMessageError | AuthenticationError) => void,
    /** Opens sealed frames (verifies, checks the replay window, decrypts); none when authentication is off. */
    private readonly sealer?: FrameSealer,
  ) {}

  addChannel(channel: string, listener: MessageListener): Promise<Unsubscribe> {
    return this.add(this.channels, channel, listener, (c) => this.enqueue('subscribe', c), (c) => this.enqueue('unsubscribe', c));
  }

  addPattern(pattern: string, listener: PatternListener): Promise<Unsubscribe> {
    return this.add(this.patterns, pattern, listener, (p) => this.enqueue('psubscribe', p), (p) => this.enqueue('punsubscribe', p));
  }

  /** Channels and patterns with at least one listener. */
  active(): { channels: string[]; patterns: string[] } {
    return { channels: [...this.channels.keys()], patterns: [...this.patterns.keys()] };
  }

  /** Forgets every listener (the connection is going away). */
  clear(): void {
    this.channels.clear();
    this.patterns.clear();
  }

  /** Decodes a frame received on `channel` (through `pattern`, when given) and hands each message to the listeners. */
  deliver(channel: string, pattern: string | undefined, frame: Buffer): void {
    const entry = pattern === undefined ? this.channels.get(channel) : this.patterns.get(pattern);
    if (entry === undefined) return; // unsubscribed while the frame was in flight
    let messages: unknown[];
    if (this.sealer !== undefined) {
      try {
        if (frame.length > this.maxFrameBytes() + SEAL_ALLOWANCE) throw new MalformedMessageError(channel, `sealed frame of ${frame.length} bytes exceeds the limit of ${this.maxFrameBytes()} and the seal's allowance`);
        // each subscription sees a frame once: an exact and a pattern subscription of one connection both receive it
        const opened = this.sealer.open(frame, channel, true, pattern);
        frame = opened.inner;
        if (opened.sender.verified) {
          messages = decodeFrame(this.codec, frame, this.maxFrameBytes());
          const forged = attest(messages, opened.sender);
          if (forged !== undefined) throw this.sealer.refuseClaim(channel, forged);
          return this.dispatch(entry, channel, pattern, messages);
        }
      } catch (cause) {
        if (!(cause instanceof AuthenticationError)) return this.malformedFrame(channel, cause);
        this.onMalformed(cause);
        return;
      }
    }
    try {
      messages = decodeFrame(this.codec, frame, this.maxFrameBytes());
    } catch (cause) {
      return this.malformedFrame(channel, cause);
    }
    this.dispatch(entry, channel, pattern, messages);
  }

  private malformedFrame(channel: string, cause: unknown): void {
    this.counters.malformed += 1;
    if (cause instanceof MalformedMessageError) return this.onMalformed(cause);
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.onMalformed(new MalformedMessageError(channel, reason, { cause }));
  }

  private dispatch(entry: Entry<MessageListener> | Entry<PatternListener>, channel: string, pattern: string | undefined, messages: unknown[]): void {
    this.counters.framesReceived += 1;
    this.counters.messagesReceived += messages.length;
    const listeners = entry.listeners;
    for (const message of messages) {
      for (const { fn: listener } of listeners) {
        try {
          if (pattern === undefined) (listener as MessageListener)(message, channel);
          else (listener as PatternListener)(message, channel, pattern);
        } catch (error) {
          this.warnings.error(`listener ${channel}`, { err: error, channel }, 'a listener threw; delivery goes on');
        }
      }
    }
  }

  /** Queues one subscription call for the flush at the end of the tick. */
  private enqueue(operation: Operation, name: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.queued.length === 0) queueMicrotask(this.flush);
      this.queued.push({ operation, name, resolve, reject });
    });
  }

  /** Sends the queued calls: each run of one kind as backend calls of up to MAX_NAMES_PER_CALL names. */
  private readonly flush = (): void => {
    const queued = this.queued;
    this.queued = [];
    let start = 0;
    while (start < queued.length) {
      const operation = queued[start].operation;
      let end = start + 1;
      while (end < queued.length && end - start < MAX_NAMES_PER_CALL && queued[end].operation === operation) end++;
      const batch = queued.slice(start, end);
      let call: Promise<void>;
      try {
        call = this.backend[operation](batch.map((pending) => pending.name));
      } catch (error) {
        call = Promise.reject(error);
      }
      call.then(
        () => {
          for (const pending of batch) pending.resolve();
        },
        (error: unknown) => {
          for (const pending of batch) pending.reject(error);
        },
      );
      start = end;
    }
  };

  private async add<L>(
    table: Map<string, Entry<L>>,
    name: string,
    listener: L,
    open: (name: string) => Promise<void>,
    shut: (name: string) => Promise<void>,
  ): Promise<Unsubscribe> {
    let entry = table.get(name);
    if (entry === undefined) {
      const created: Entry<L> = { listeners: [], ready: open(name) };
      entry = created;
      table.set(name, created);
      created.ready.catch(() => {
        if (table.get(name) === created) table.delete(name);
      });
    }
    const token = { fn: listener };
    entry.listeners = [...entry.listeners, token];
    try {
      await entry.ready;
    } catch (error) {
      entry.listeners = entry.listeners.filter((t) => t !== token);
      throw error;
    }
    const owner = entry;
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      owner.listeners = owner.listeners.filter((t) => t !== token);
      if (owner.listeners.length === 0 && table.get(name) === owner) {
        table.delete(name);
        await shut(name);
      }
    };
  }
}
