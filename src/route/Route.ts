import type { EventEmitter } from 'node:events';
import type { FrameSealer } from '../envelope/FrameSealer';
import type { WriteDone } from './FrameBatcher';
import type { StreamStore } from './StreamStore';
import type { RedisCommands } from './connection';
import type { MemoryBus } from './MemoryBus';

/** Receives every message of an exact-channel subscription. */
export type MessageListener = (message: unknown, channel: string) => void;
/** Receives every message of a pattern subscription. */
export type PatternListener = (message: unknown, channel: string, pattern: string) => void;
/**
 * Removes one listener; the Redis subscription goes when its last listener
 * does. That last listener still receives what the server sent before it
 * confirmed the unsubscription (a publisher counted it as a receiver), until
 * the promise resolves.
 */
export type Unsubscribe = () => Promise<void>;

/** Counters a route keeps; read them with `route.stats()`. */
export interface RouteStats {
  /** Frames written (one PUBLISH each on Redis). */
  framesSent: number;
  /** Messages carried by those frames. */
  messagesSent: number;
  /** Frames received and decoded. */
  framesReceived: number;
  /** Messages delivered out of them. */
  messagesReceived: number;
  /** Frames that could not be decoded (counted, logged, skipped). */
  malformed: number;
  /** Frames and stream entries refused by authentication (counted, logged rate-limited, dropped): the sum of the four below. */
  authRefused: number;
  /** Of those: unsigned while signing is required. */
  authUnsigned: number;
  /** Of those: a signature that does not verify, an untrusted sender or key id, a claim other than the signer, a bad seal, a ciphertext that does not decrypt. */
  authForged: number;
  /** Of those: a timestamp outside the replay window or a frame id seen before. */
  authReplayed: number;
  /** Of those: a body in clear where this receiver requires encryption (`auth.encryption.requireEncrypted`). */
  authUnencrypted: number;
}

/** See {@link Route.medium}. */
export type RouteMedium = { readonly kind: 'redis'; readonly connection: RedisCommands } | { readonly kind: 'memory'; readonly bus: MemoryBus };

/** Connection state of a route or client. */
export type RouteStatus = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closing' | 'closed';

/** Another live announcement holding an instance id (what an exclusive `announce` found instead of announcing). */
export interface HeldInstanceId {
  /** Its announcement bytes. */
  announcement: Buffer;
  /** How long it stays live without a heartbeat, in ms. */
  expiresInMs: number;
}

/**
 * How bytes move (memory in-process, or Redis). Every route passes the same
 * conformance suite (test/route/conformance.ts), so code above this layer can
 * not tell which one it runs on.
 *
 * Durable queues (the StreamStore part) are what FIRE_AND_FORGET and
 * BROADCAST are built on.
 *
 * Events: `ready`, `reconnecting`, `error` (Error), `malformed`
 * (MalformedMessageError), `close`.
 */
export interface Route extends EventEmitter, StreamStore {
  /** `memory` or `redis`. */
  readonly kind: 'memory' | 'redis';
  /** Current state. */
  readonly status: RouteStatus;

  /** Connects; rejects with ConnectionError (the reason as `cause`) when it cannot, at the latest after the connect timeout. */
  connect(): Promise<void>;
  /**
   * Flushes what is queued, drops every subscription, closes the connections.
   * With `timeoutMs`, resolves within about that time even when Redis is
   * unreachable: what could not be sent is abandoned (its writes reject) and logged.
   */
  close(timeoutMs?: number): Promise<void>;

  /**
   * Sends a message to every current subscriber of `channel` and resolves
   * with how many subscribers (exact and pattern) received it. Messages sent
   * to one channel keep their order. With `group` (an event's headers),
   * consecutive messages of one tick with the same group object arrive as one
   * `{ headers: group, payloads: [...] }` message.
   */
  publish(channel: string, message: unknown, group?: object): Promise<number>;
  /**
   * The same as `publish`, reporting the outcome to `done(context, error,
   * receivers)` instead of a promise: the hot paths of RPC send thousands of
   * messages a second, and one shared callback with a context costs no
   * promise and no closure per message. With `sliceAt`, once that many
   * messages wait for the channel they leave as one frame without waiting
   * for the end of the tick (the receiver starts on them sooner).
   */
  post<C>(channel: string, message: unknown, group: object | undefined, context: C, done: WriteDone<number, C>, sliceAt?: number): void;
  /**
   * Appends a message to a durable stream and resolves with the id of the
   * entry that carries it: the messages appended to one stream within one
   * tick leave as one entry (a frame) of at most `perEntry` messages, in
   * order.
   */
  streamAppend(stream: string, message: unknown, perEntry: number): Promise<string>;
  /**
   * How many connections subscribe to each channel exactly (PUBSUB NUMSUB):
   * pattern subscribers are not counted, so unlike `publish`'s receiver
   * count this tells whether the owner of a channel still listens, whoever
   * else watches.
   */
  channelSubscribers(channels: string[]): Promise<number[]>;
  /** Adds a listener for an exact channel; glob characters have no special meaning. */
  subscribe(channel: string, listener: MessageListener): Promise<Unsubscribe>;
  /**
   * Adds one listener for every channel of `channels`, with one unsubscribe
   * for all of them; a channel listed twice counts once. All or nothing:
   * when one channel is refused (PermissionError) or its subscription
   * fails, those that subscribed are unsubscribed again and the promise
   * rejects with the first channel's error. The route keeps the array: the
   * caller must not change it afterwards.
   */
  subscribeMany(channels: readonly string[], listener: MessageListener): Promise<Unsubscribe>;
  /** Adds a listener for a glob pattern (`audit.*`). */
  psubscribe(pattern: string, listener: PatternListener): Promise<Unsubscribe>;

  /** Reads a key's bytes, null when absent. */
  get(key: string): Promise<Buffer | null>;
  /** Writes a key, with a time to live in ms when given. */
  set(key: string, value: Buffer | string, ttlMs?: number): Promise<void>;
  /** Deletes a key; resolves with 1 when it existed, else 0. */
  del(key: string): Promise<number>;
  /**
   * Atomically adds `by` to an integer key (absent counts as 0), refreshing
   * its TTL when given. Rejects, changing nothing, with ValidationError when
   * the result would leave the safe integers ±(2^53−1), and with
   * MalformedMessageError when the stored value is not an integer.
   */
  incrBy(key: string, by: number, ttlMs?: number): Promise<number>;
  /** Every key matching a glob pattern (SCAN on Redis: never blocks it). */
  keys(pattern: string): Promise<string[]>;
  /**
   * @internal What stores built over this route run on (RedisMutex's lock
   * store): the route's command connection to Redis, or its memory bus.
   * Named by the contract, so that no layer above tests for a route class or
   * reaches into one; a custom route has none (RedisMutex then needs its own
   * connection).
   */
  readonly medium: RouteMedium;

  /**
   * Announces (or refreshes) an instance of `service`; it counts as live for
   * `ttlMs`. With `exclusive`, in the same atomic step, announces only when no
   * live announcement with other bytes holds `instanceId`, and otherwise
   * resolves with that one (another process under the same id). A route that
   * ignores `exclusive` resolves with nothing: no check.
   */
  announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number, exclusive?: boolean): Promise<HeldInstanceId | void>;
  /** Removes an instance at once. */
  withdraw(service: string, instanceId: string): Promise<void>;
  /** The announcements of the live instances of `service`. */
  liveInstances(service: string): Promise<Buffer[]>;

  /** Counters since creation. */
  stats(): RouteStats;
  /**
   * @internal Seals what this route writes and opens what it reads, when
   * authentication is configured (docs/security.md). A custom route has
   * none, so a client refuses the `auth` option with one.
   */
  readonly sealer?: FrameSealer;
}
