import { decodeFrame, type Codec } from '../envelope/codec';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import type { RateLimitedLog } from '../log/RateLimitedLog';
import type { MessageListener, PatternListener, RouteStats, Unsubscribe } from './Route';

/** The underlying one-per-channel subscription calls of a route. */
export interface SubscriptionBackend {
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  psubscribe(pattern: string): Promise<void>;
  punsubscribe(pattern: string): Promise<void>;
}

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
 * every route. A frame that does not decode is counted, reported and skipped;
 * a listener that throws is logged; neither can stop delivery of what follows.
 */
export class SubscriptionTable {
  private readonly channels = new Map<string, Entry<MessageListener>>();
  private readonly patterns = new Map<string, Entry<PatternListener>>();

  constructor(
    private readonly backend: SubscriptionBackend,
    private readonly codec: Codec,
    private readonly maxFrameBytes: () => number,
    private readonly counters: RouteStats,
    private readonly warnings: RateLimitedLog,
    private readonly onMalformed: (error: MalformedMessageError) => void,
  ) {}

  addChannel(channel: string, listener: MessageListener): Promise<Unsubscribe> {
    return this.add(this.channels, channel, listener, (c) => this.backend.subscribe(c), (c) => this.backend.unsubscribe(c));
  }

  addPattern(pattern: string, listener: PatternListener): Promise<Unsubscribe> {
    return this.add(this.patterns, pattern, listener, (p) => this.backend.psubscribe(p), (p) => this.backend.punsubscribe(p));
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
    try {
      messages = decodeFrame(this.codec, frame, this.maxFrameBytes());
    } catch (cause) {
      this.counters.malformed += 1;
      const reason = cause instanceof Error ? cause.message : String(cause);
      this.onMalformed(new MalformedMessageError(channel, reason, { cause }));
      return;
    }
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
