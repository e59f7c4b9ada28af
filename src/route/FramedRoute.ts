import { EventEmitter } from 'node:events';
import type { MalformedMessageError } from '../errors/MalformedMessageError';
import { ValidationError } from '../errors/ValidationError';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { FrameSealer } from '../envelope/FrameSealer';
import type { AuthenticationError } from '../errors/AuthenticationError';
import { FrameBatcher, type FrameSink, type WriteDone } from './FrameBatcher';
import { patternProblem } from './glob';
import type { MessageListener, PatternListener, RouteStats, Unsubscribe } from './Route';
import { emptyStats, type RouteOptions } from './RouteOptions';
import { SubscriptionTable, type SubscriptionBackend } from './SubscriptionTable';

/**
 * What every route shares: messages leave framed through a
 * {@link FrameBatcher} over the route's own write, frames arrive through a
 * {@link SubscriptionTable} over its own subscribe calls, and both keep the
 * route's counters. A route supplies the write and the subscribe calls.
 */
export abstract class FramedRoute extends EventEmitter {
  protected readonly counters: RouteStats = emptyStats();
  protected readonly batcher: FrameBatcher;
  protected readonly table: SubscriptionTable;
  /** Stream appends, framed like publishes: one batcher per entry size asked for (in practice one). */
  private readonly appenders = new Map<number, FrameBatcher<string>>();
  private readonly appended = { framesSent: 0, messagesSent: 0 };
  /** Warnings a remote party or an outage can repeat (bad frames, connection errors): one line per window, with counts. */
  protected readonly warnings: RateLimitedLog;
  readonly sealer: FrameSealer | undefined;

  constructor(
    protected readonly options: RouteOptions,
    /** Writes one frame to a channel and resolves with the receiver count (called only once connected). */
    write: FrameSink<number>,
    backend: SubscriptionBackend,
  ) {
    super();
    this.warnings = new RateLimitedLog(options.logger);
    this.sealer = options.auth === undefined ? undefined : new FrameSealer(options.auth, this.counters);
    this.batcher = new FrameBatcher(options.codec, options.limits, write, this.counters, options.logger, this.sealer, (writes) => this.writeTogether(writes));
    const receiveLimit = () => options.limits.maxPayloadBytes + 1024;
    this.table = new SubscriptionTable(backend, options.codec, receiveLimit, this.counters, this.warnings, (error) => this.reportMalformed(error), this.sealer);
  }

  publish(channel: string, message: unknown, group?: object): Promise<number> {
    return this.batcher.send(channel, message, group);
  }

  post<C>(channel: string, message: unknown, group: object | undefined, context: C, done: WriteDone<number, C>, sliceAt?: number): void {
    this.batcher.post(channel, message, group, context, done, sliceAt);
  }

  streamAppend(stream: string, message: unknown, perEntry: number): Promise<string> {
    let appender = this.appenders.get(perEntry);
    if (appender === undefined) {
      const limits = { ...this.options.limits, maxFrameMessages: perEntry };
      appender = new FrameBatcher<string>(this.options.codec, limits, (key, frame) => this.streamAdd(key, frame), this.appended, this.options.logger, this.sealer);
      this.appenders.set(perEntry, appender);
    }
    return appender.send(stream, message);
  }

  /** Runs the writes of one flush; a route whose connection can send them in one system call overrides it. */
  protected writeTogether(writes: () => void): void {
    writes();
  }

  /** Sends at once what waits for the end of the tick: publishes and stream appends. */
  protected flushWrites(): void {
    this.batcher.flush();
    for (const appender of this.appenders.values()) appender.flush();
  }

  /** Adds one entry of bytes to a stream (the route's StreamStore). */
  abstract streamAdd(stream: string, payload: Buffer): Promise<string>;

  subscribe(channel: string, listener: MessageListener): Promise<Unsubscribe> {
    return this.table.addChannel(channel, listener);
  }

  subscribeMany(channels: readonly string[], listener: MessageListener): Promise<Unsubscribe> {
    return this.table.addChannels(channels, listener);
  }

  /** Refuses a pattern that could not reach Redis unchanged ({@link patternProblem}) with a ValidationError, before anything is subscribed. */
  psubscribe(pattern: string, listener: PatternListener): Promise<Unsubscribe> {
    const problem = patternProblem(pattern);
    if (problem !== undefined) return Promise.reject(new ValidationError(problem));
    return this.table.addPattern(pattern, listener);
  }

  stats(): RouteStats {
    return { ...this.counters };
  }

  private reportMalformed(error: MalformedMessageError | AuthenticationError): void {
    // the owner (a RedisClient) logs what it is told; log here only when nobody listens
    if (this.listenerCount('malformed') > 0) this.emit('malformed', error);
    else this.warnings.warn(`malformed ${error.source}`, { err: error }, error.code === 'ERR_AUTHENTICATION' ? 'unauthenticated frame refused' : 'malformed frame skipped');
  }
}
