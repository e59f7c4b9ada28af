import { decodeFrame, type Codec } from '../envelope/codec';
import type { FrameSealer } from '../envelope/FrameSealer';
import { attest } from '../envelope/sender';
import { AuthenticationError } from '../errors/AuthenticationError';
import { MalformedMessageError } from '../errors/MalformedMessageError';
import { PermissionError } from '../errors/PermissionError';
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

/** One caller waiting for one or more batches: told once every batch of its names is (un)subscribed or refused. */
interface Waiter {
  /** The name (or, for one call of many names, the names) whose refusal rejects the caller. */
  names: string | readonly string[];
  /** What the caller's promise resolves with (the listener's unsubscribe; nothing for an unsubscribe). */
  value: unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  /** Batches still to end before the caller is told. */
  pending: number;
  /** The first failure or refusal among its names, kept until its last batch ended. */
  error: unknown;
  /** For one subscription: its entry, whose listener token is taken out again when the name is refused. */
  owner: Entry<unknown> | undefined;
  /** For a subscription: its listener token (for many names, the one token of all of them, taken out of every name when one fails). */
  token: { fn: unknown } | undefined;
}

/**
 * Names queued for one backend call, and the callers waiting for it: a
 * record each, settled in one loop (no promise chain or closure per name).
 */
interface Batch {
  operation: Operation;
  names: string[];
  waiters: Waiter[];
}

// A promise's settlers, taken by a shared executor instead of a closure per call (the executor runs synchronously).
let capturedResolve: (value: unknown) => void = () => undefined;
let capturedReject: (error: unknown) => void = () => undefined;
function captureSettlers(resolve: (value: any) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** A listener array with none (shared: an entry that loses its last listener allocates nothing). */
const NO_LISTENERS: ReadonlyArray<never> = Object.freeze([]);

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
  /** The batch of the underlying subscription call, until it succeeded. */
  batch: Batch | undefined;
}

/**
 * Many listeners per channel over one underlying subscription per channel
 * (and per pattern), and the decode-and-dispatch of received frames, shared by
 * every route. The subscription calls of one tick are coalesced: consecutive
 * calls of one kind (subscribe, unsubscribe, ...) go to the backend as one
 * call of up to MAX_NAMES_PER_CALL names, in the order they were made, so
 * subscribing K channels at once costs about one SUBSCRIBE of K channels.
 * Redis refuses a whole command when its ACL leaves out one of the names:
 * such a call is tried again by halves, down to the refused names alone, so
 * that the others still subscribe and only the refused ones reject (with
 * their PermissionError).
 * A frame that does not decode is counted, reported and skipped; a listener
 * that throws is logged; neither can stop delivery of what follows.
 */
export class SubscriptionTable {
  private readonly channels = new Map<string, Entry<MessageListener>>();
  private readonly patterns = new Map<string, Entry<PatternListener>>();
  /**
   * Entries whose last listener left, until Redis confirmed their
   * unsubscription: Redis sends what was published before it processed the
   * UNSUBSCRIBE ahead of its reply, and a publisher counted this connection
   * among the receivers of those frames, so they still reach the listener.
   */
  private readonly drainingChannels = new Map<string, Entry<MessageListener>>();
  private readonly drainingPatterns = new Map<string, Entry<PatternListener>>();
  private queued: Batch[] = [];

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
    return this.add(this.channels, channel, listener, 'subscribe', 'unsubscribe');
  }

  /** One listener for every channel of `channels` (see {@link addMany}); the table keeps the array, which the caller must not change. */
  addChannels(channels: readonly string[], listener: MessageListener): Promise<Unsubscribe> {
    return this.addMany(this.channels, channels, listener, 'subscribe', 'unsubscribe');
  }

  addPattern(pattern: string, listener: PatternListener): Promise<Unsubscribe> {
    return this.add(this.patterns, pattern, listener, 'psubscribe', 'punsubscribe');
  }

  /** Channels and patterns with at least one listener. */
  active(): { channels: string[]; patterns: string[] } {
    return { channels: [...this.channels.keys()], patterns: [...this.patterns.keys()] };
  }

  /** Forgets every listener (the connection is going away). */
  clear(): void {
    this.channels.clear();
    this.patterns.clear();
    this.drainingChannels.clear();
    this.drainingPatterns.clear();
  }

  /** Decodes a frame received on `channel` (through `pattern`, when given) and hands each message to the listeners. */
  deliver(channel: string, pattern: string | undefined, frame: Buffer): void {
    const entry = pattern === undefined ? (this.channels.get(channel) ?? this.drainingChannels.get(channel)) : (this.patterns.get(pattern) ?? this.drainingPatterns.get(pattern));
    if (entry === undefined) return; // unsubscribed (and confirmed) while the frame was in flight
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

  /**
   * Queues one subscription call for the flush at the end of the tick, in
   * the batch of up to MAX_NAMES_PER_CALL names it joins (returned).
   */
  private enqueue(operation: Operation, name: string): Batch {
    let batch = this.queued[this.queued.length - 1];
    if (batch === undefined || batch.operation !== operation || batch.names.length >= MAX_NAMES_PER_CALL) {
      if (this.queued.length === 0) queueMicrotask(this.flush);
      batch = { operation, names: [], waiters: [] };
      this.queued.push(batch);
    }
    batch.names.push(name);
    return batch;
  }

  /** A promise of `value` settled with `batch` (rejected when `name` is refused or the batch fails). */
  private wait<T>(batch: Batch, name: string, value: T, owner?: Entry<unknown>, token?: { fn: unknown }): Promise<T> {
    const promise = new Promise<T>(captureSettlers);
    batch.waiters.push({ names: name, value, resolve: capturedResolve, reject: capturedReject, pending: 1, error: undefined, owner, token });
    return promise;
  }

  /** Makes `waiter` wait for `batch` too, once however many of its names the batch carries. */
  private join(batch: Batch | undefined, waiter: Waiter): void {
    if (batch === undefined || batch.waiters[batch.waiters.length - 1] === waiter) return;
    batch.waiters.push(waiter);
    waiter.pending += 1;
  }

  /** A promise of `waiter.value` once every batch it joined ended (at once when it joined none). */
  private waitAll<T>(waiter: Waiter): Promise<T> {
    if (waiter.pending === 0) return Promise.resolve(waiter.value as T);
    const promise = new Promise<T>(captureSettlers);
    waiter.resolve = capturedResolve;
    waiter.reject = capturedReject;
    return promise;
  }

  /** Sends the queued calls, in order; a subscribed entry then holds no batch, a failed one is forgotten. */
  private readonly flush = (): void => {
    const queued = this.queued;
    this.queued = [];
    for (const batch of queued) void this.send(batch);
  };

  /** One batch's call (narrowed down when some names are refused), then every name and waiter of it settled. */
  private async send(batch: Batch): Promise<void> {
    const table: Map<string, Entry<unknown>> | undefined = batch.operation === 'subscribe' ? this.channels : batch.operation === 'psubscribe' ? this.patterns : undefined;
    const refused = new Map<string, unknown>();
    let failure: unknown;
    try {
      await this.call(batch.operation, batch.names, refused);
    } catch (error) {
      failure = error ?? new Error(`${batch.operation} failed`);
    }
    // later listeners of the subscribed names wait for nothing
    if (table !== undefined) for (const name of batch.names) this.settle(table, name, batch, failure !== undefined || (refused.size > 0 && refused.has(name)));
    else {
      const draining: Map<string, Entry<unknown>> = batch.operation === 'unsubscribe' ? this.drainingChannels : this.drainingPatterns;
      for (const name of batch.names) if (draining.get(name)?.batch === batch) draining.delete(name);
    }
    for (const waiter of batch.waiters) {
      const error = failure ?? (refused.size === 0 ? undefined : refusalOf(waiter.names, refused));
      if (waiter.error === undefined) waiter.error = error;
      if (--waiter.pending > 0) continue;
      if (waiter.error === undefined) {
        waiter.resolve(waiter.value);
        continue;
      }
      const owner = waiter.owner;
      if (owner !== undefined) owner.listeners = owner.listeners.filter((t) => t !== waiter.token);
      else if (waiter.token !== undefined && table !== undefined) {
        // all or nothing: the names of the call that did subscribe are unsubscribed again before the caller hears of it
        const rejected = waiter.reject.bind(undefined, waiter.error);
        void this.removeMany(table, waiter.names as readonly string[], waiter.token, batch.operation === 'subscribe' ? 'unsubscribe' : 'punsubscribe').then(rejected, rejected);
        continue;
      }
      waiter.reject(waiter.error);
    }
  }

  /**
   * The backend call for `names`. Redis refuses the whole command when its
   * ACL leaves out any one of them: a refused call of several names is made
   * again by halves, each name refused alone recorded in `refused` (a
   * deployment that refuses k of n names costs about 2k log2(n / k) more
   * calls, and only when a refusal happens). Any other failure fails them all.
   */
  private async call(operation: Operation, names: string[], refused: Map<string, unknown>): Promise<void> {
    try {
      await this.backend[operation](names);
    } catch (error) {
      if (!(error instanceof PermissionError)) throw error;
      if (names.length === 1) {
        refused.set(names[0], error);
        return;
      }
      const middle = names.length >> 1;
      await Promise.all([this.call(operation, names.slice(0, middle), refused), this.call(operation, names.slice(middle), refused)]);
    }
  }

  /** An entry whose subscription call (`batch`) ended: subscribed (no batch kept), or failed (the entry goes). */
  private settle(table: Map<string, Entry<unknown>>, name: string, batch: Batch, failed: boolean): void {
    const entry = table.get(name);
    if (entry?.batch !== batch) return;
    if (failed) table.delete(name);
    else entry.batch = undefined;
  }

  private add<L>(table: Map<string, Entry<L>>, name: string, listener: L, open: Operation, shut: Operation): Promise<Unsubscribe> {
    const token = { fn: listener };
    const entry = this.attach(table, name, token, open) as Entry<L>;
    const remove = this.remove.bind(this, table, name, entry, token, shut) as Unsubscribe;
    if (entry.batch === undefined) return Promise.resolve(remove);
    return this.wait(entry.batch, name, remove, entry as Entry<unknown>, token);
  }

  /**
   * One listener for many names: one token, one listener array, one waiter
   * and one unsubscribe for all of them, so that a name costs its entry
   * alone. A name listed
   * twice counts once. All or nothing: when one name is refused or its
   * call fails, the others are unsubscribed again and the promise rejects
   * with the error of the first such name.
   */
  private addMany<L>(table: Map<string, Entry<L>>, names: readonly string[], listener: L, open: Operation, shut: Operation): Promise<Unsubscribe> {
    const token = { fn: listener };
    const waiter: Waiter = { names, value: undefined, resolve: ignore, reject: ignore, pending: 0, error: undefined, owner: undefined, token };
    // the listener array of every name the call alone listens to: one array for all (arrays are replaced, never changed)
    const alone = [token];
    for (const name of names) this.join(this.attach(table, name, token, open, alone)?.batch, waiter);
    waiter.value = this.removeMany.bind(this, table, names, token, shut) as Unsubscribe;
    return this.waitAll(waiter);
  }

  /**
   * Adds `token` to the entry of `name`, made (and its subscription queued)
   * when there is none; undefined when the entry's last listener is already
   * `token` (a name listed twice in one call).
   */
  private attach<L>(table: Map<string, Entry<L>>, name: string, token: { fn: L }, open: Operation, alone?: ReadonlyArray<{ fn: L }>): Entry<L> | undefined {
    let entry = table.get(name);
    if (entry === undefined) {
      entry = { listeners: NO_LISTENERS, batch: this.enqueue(open, name) };
      table.set(name, entry);
    } else if (entry.listeners[entry.listeners.length - 1] === token) return undefined;
    // sized to fit: a spread of an empty array reserves room for 16 more
    entry.listeners = entry.listeners.length === 0 ? (alone ?? [token]) : [...entry.listeners, token];
    return entry;
  }

  /**
   * Takes `token` out of `owner` (the entry of `name`); the batch of the
   * unsubscription when that was its last listener, which keeps receiving
   * until Redis confirms it (see `drainingChannels`).
   */
  private detach<L>(table: Map<string, Entry<L>>, name: string, owner: Entry<L>, token: { fn: L }, shut: Operation): Batch | undefined {
    if (owner.listeners.length > 1 || table.get(name) !== owner) {
      owner.listeners = owner.listeners.filter((t) => t !== token);
      return undefined;
    }
    table.delete(name);
    owner.batch = this.enqueue(shut, name);
    (shut === 'unsubscribe' ? this.drainingChannels : this.drainingPatterns).set(name, owner as Entry<never>);
    return owner.batch;
  }

  /** One listener's unsubscribe (bound per listener: no closure over the subscribe call's scope); a second call does nothing. */
  private remove<L>(table: Map<string, Entry<L>>, name: string, owner: Entry<L>, token: { fn: L }, shut: Operation): Promise<void> {
    if (table.get(name) !== owner || !owner.listeners.includes(token)) return Promise.resolve();
    const batch = this.detach(table, name, owner, token, shut);
    return batch === undefined ? Promise.resolve() : this.wait(batch, name, undefined);
  }

  /** The unsubscribe of {@link addMany}: `token` out of every name that still has it; a second call does nothing. */
  private removeMany<L>(table: Map<string, Entry<L>>, names: readonly string[], token: { fn: L }, shut: Operation): Promise<void> {
    const waiter: Waiter = { names, value: undefined, resolve: ignore, reject: ignore, pending: 0, error: undefined, owner: undefined, token: undefined };
    for (const name of names) {
      const entry = table.get(name);
      if (entry !== undefined && entry.listeners.includes(token)) this.join(this.detach(table, name, entry, token, shut), waiter);
    }
    return this.waitAll(waiter);
  }
}

function ignore(): void {}

/** The refusal of the first of `names` that `refused` holds. */
function refusalOf(names: string | readonly string[], refused: Map<string, unknown>): unknown {
  if (typeof names === 'string') return refused.get(names);
  for (const name of names) {
    const error = refused.get(name);
    if (error !== undefined) return error;
  }
  return undefined;
}
