import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { frameMessages, type Codec } from '../envelope/codec';
import type { ActionResult, Query } from '../envelope/types';
import { invalidQueryReason } from '../envelope/validate';
import type { StreamEntry, StreamStore } from '../route/StreamStore';

/** Why a query went to the dead-letter store, and what it was. */
export interface DeadLetter {
  /** Id of the dead-letter entry (for replay). */
  id: string;
  /** Why it was given up: `max-attempts`, `malformed`, `no-handler`, `expired`. */
  reason: 'max-attempts' | 'malformed' | 'no-handler' | 'expired';
  /** Human-readable detail. */
  detail: string;
  /** The query, when it decoded. */
  query: Query | null;
  /** The raw bytes, when the entry (or one of its messages) did not decode as a query. */
  raw: Buffer | null;
  /** Stream and entry it came from. */
  stream: string;
  entryId: string;
  /** Delivery attempts made. */
  attempts: number;
  /** When it was given up, ms since the epoch. */
  failedAt: number;
  /** The last handler error, for `max-attempts`. */
  lastError: ActionResult | null;
}

/** What a consumer hands to the processing function. */
export interface Delivery {
  query: Query;
  entry: StreamEntry;
}

/** Settings of one consumer. */
export interface QueueConsumerSettings {
  stream: string;
  group: string;
  consumer: string;
  deadStream: string;
  /** Key of the completion records of one time bucket (buckets are `doneTtlMs` long). */
  doneBucketKey: (bucket: number) => string;
  doneTtlMs: number;
  visibilityTimeoutMs: number;
  maxAttempts: number;
  /** Entries read at once, and queries processed between two writes of completion records. */
  batchSize: number;
  blockMs: number;
  maxPayloadBytes: number;
}

/** Counters of one consumer. */
export interface QueueConsumerStats {
  processed: number;
  failed: number;
  deadLettered: number;
  duplicatesSuppressed: number;
  redelivered: number;
  /** Non-empty batches of entries taken from the stream. */
  batches: number;
}

/** Processes one query: done (or a promise of it), or no handler; throwing or rejecting means it failed (it is then redelivered). */
export type ProcessQuery = (delivery: Delivery) => 'done' | 'no-handler' | Promise<'done' | 'no-handler'>;

/** What became of one query. */
type Outcome = 'completed' | 'dead-lettered' | 'retry';

/** One stream entry: a frame of queries (what one sender wrote in one tick), decoded. */
interface DecodedEntry {
  entry: StreamEntry;
  /** The frame's messages, each a query or why it is not one; an Error alone when the entry is no frame. */
  messages: Array<{ query: Query } | { invalid: string; raw: Buffer }> | Error;
}

/** A batch of entries read from the stream, decoded, with the completion checks of their queries. */
interface Batch {
  entries: DecodedEntry[];
  done: Set<string>;
  /** How many entries were asked for (a full answer means more are waiting). */
  asked: number;
}

/**
 * Reads one consumer group of one stream and processes its queries in stream
 * order. Each entry is a frame holding the queries one sender wrote in one
 * tick (a lone envelope written by a foreign client is accepted too).
 *
 * A query is completed once its handler succeeded; completions are recorded
 * (for duplicate suppression) every `batchSize` queries and at the end of
 * each batch, that last write overlapping the next batch. A query may instead go to the
 * dead-letter store (malformed, no handler, expired, or failed `maxAttempts`
 * times). An entry is acknowledged once each of its queries is completed or
 * dead-lettered.
 * An entry with a failed query stays pending and is redelivered after the
 * visibility timeout with `processAttempts` counted, its completed queries
 * being skipped. So a query is processed twice only when its instance dies
 * (or loses Redis) after the handler finished and before its record was
 * written: at most 2 x `batchSize` queries per consumer and fault.
 *
 * Nothing here throws out of the loop: Redis errors are logged and retried.
 */
export class QueueConsumer {
  private running = false;
  private loop: Promise<void> | undefined;
  private lastClaimAt = 0;
  /**
   * Query ids completed in this batch and the one before: a query appended
   * twice (a sender's retry after a lost reply) can land in the next batch,
   * which was checked before this one's records were written.
   */
  private recent = new Set<string>();
  private previous = new Set<string>();
  /**
   * `<entry id> <query id>` of queries this consumer dead-lettered from
   * entries that stay pending (another query of theirs is to be retried), so
   * a redelivery does not dead-letter them twice. Dead-lettered queries get
   * no completion record: a replay must process them.
   */
  private readonly deadLettered = new Set<string>();
  /** The last record write of the previous batch, still in flight while the next batch is read and processed. */
  private recording: Promise<void> = Promise.resolve();
  /** Mean queries per entry (moving average): entries are read `batchSize` queries' worth at a time. */
  private queriesPerEntry = 1;
  readonly counters: QueueConsumerStats = { processed: 0, failed: 0, deadLettered: 0, duplicatesSuppressed: 0, redelivered: 0, batches: 0 };

  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;

  constructor(
    private readonly store: StreamStore,
    private readonly codec: Codec,
    private readonly settings: QueueConsumerSettings,
    private readonly process: ProcessQuery,
    private readonly logger: Logger,
  ) {
    this.warnings = new RateLimitedLog(logger);
  }

  /** Starts the loop (the group must exist). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops taking entries and waits for the batch in progress. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    this.warnings.flush();
  }

  private async run(): Promise<void> {
    const s = this.settings;
    let backoffMs = 50;
    // what this consumer held when it stopped (same consumer name after a restart) comes first
    let ownPendingDone = false;
    let prefetched: Promise<Batch> | undefined;
    while (this.running) {
      try {
        if (!ownPendingDone) {
          const asked = this.entriesPerRead();
          const own = await this.store.streamRead(s.stream, s.group, s.consumer, 'own-pending', asked, 0);
          await this.handle(await this.prepare(own, asked));
          ownPendingDone = own.length < asked;
          continue;
        }
        if (Date.now() - this.lastClaimAt >= s.visibilityTimeoutMs / 2) {
          this.lastClaimAt = Date.now();
          const asked = this.entriesPerRead();
          const claimed = await this.store.streamClaimIdle(s.stream, s.group, s.consumer, s.visibilityTimeoutMs, asked);
          this.counters.redelivered += claimed.length;
          if (claimed.length > 0) this.logger.debug({ stream: s.stream, group: s.group, claimed: claimed.length, idleMs: s.visibilityTimeoutMs }, 'claimed entries idle past the visibility timeout');
          await this.handle(await this.prepare(claimed, asked));
          if (claimed.length === asked) this.lastClaimAt = 0;
        }
        const fresh = await (prefetched ?? this.readFresh());
        // a full batch means more are waiting: fetch (and check) the next while this one is processed
        prefetched = fresh.entries.length === fresh.asked && this.running ? this.readFresh() : undefined;
        prefetched?.catch(() => undefined); // its failure surfaces when awaited
        await this.handle(fresh);
        backoffMs = 50;
      } catch (error) {
        prefetched = undefined;
        if (!this.running) break;
        this.warnings.warn('read failed', { err: error, stream: s.stream, group: s.group }, 'queue read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    // entries fetched ahead are ours already: process them rather than leave them to the visibility timeout
    if (prefetched) {
      await prefetched.then((batch) => this.handle(batch)).catch((error: unknown) => this.logger.warn({ err: error }, 'could not finish the last batch'));
    }
    await this.recording;
  }

  private async readFresh(): Promise<Batch> {
    const s = this.settings;
    const blockMs = Math.max(1, Math.min(s.blockMs, s.visibilityTimeoutMs / 2));
    const asked = this.entriesPerRead();
    return this.prepare(await this.store.streamRead(s.stream, s.group, s.consumer, '>', asked, blockMs), asked);
  }

  /** Entries holding about `batchSize` queries. */
  private entriesPerRead(): number {
    return Math.max(1, Math.min(this.settings.batchSize, Math.round(this.settings.batchSize / this.queriesPerEntry)));
  }

  /** Decodes a batch and checks which of its queries were completed before (one round trip for the batch). */
  private async prepare(entries: StreamEntry[], asked = this.entriesPerRead()): Promise<Batch> {
    if (entries.length === 0) return { entries: [], done: new Set(), asked };
    const s = this.settings;
    const decoded = entries.map((entry) => this.decode(entry));
    const queryIds: string[] = [];
    for (const { messages } of decoded) if (!(messages instanceof Error)) for (const m of messages) if ('query' in m) queryIds.push(m.query.queryId);
    this.queriesPerEntry = 0.8 * this.queriesPerEntry + 0.2 * Math.max(1, queryIds.length / entries.length);
    // a record lives one to two bucket lengths: check the current bucket and the one before
    const bucket = Math.floor(Date.now() / s.doneTtlMs);
    const flags = await this.store.whichDone([s.doneBucketKey(bucket), s.doneBucketKey(bucket - 1)], queryIds);
    return { entries: decoded, done: new Set(queryIds.filter((_, i) => flags[i])), asked };
  }

  private decode(entry: StreamEntry): DecodedEntry {
    const s = this.settings;
    try {
      if (entry.payload.length > s.maxPayloadBytes + 1024) throw new Error(`entry of ${entry.payload.length} bytes exceeds limits.maxPayloadBytes (${s.maxPayloadBytes})`);
      const decoded = this.codec.decode(entry.payload);
      // a foreign writer may append a lone envelope instead of a frame
      const messages = Array.isArray(decoded) ? frameMessages(decoded) : [decoded];
      return {
        entry,
        messages: messages.map((message) => {
          const reason = invalidQueryReason(message);
          return reason === undefined ? { query: message as Query } : { invalid: reason, raw: this.codec.encode(message) };
        }),
      };
    } catch (error) {
      return { entry, messages: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  /** Processes a batch in stream order; records completions and acknowledges entries as it goes. */
  private async handle({ entries, done }: Batch): Promise<void> {
    if (entries.length === 0) return;
    this.counters.batches += 1;
    const s = this.settings;
    const completed: string[] = [];
    const finished: string[] = [];
    const record = async (): Promise<void> => {
      if (completed.length === 0 && finished.length === 0) return;
      const ids = finished.splice(0);
      const queryIds = completed.splice(0);
      const bucket = Math.floor(Date.now() / s.doneTtlMs);
      await this.recording; // writes stay in order, and at most one is in flight
      await this.store.streamAck(s.stream, s.group, ids, { delete: false, done: { key: s.doneBucketKey(bucket), ids: queryIds, ttlMs: 2 * s.doneTtlMs } });
    };
    for (const { entry, messages } of entries) {
      if (messages instanceof Error) {
        await this.deadLetterEntry(entry, messages.message);
        continue;
      }
      let unfinished = 0;
      for (const message of messages) {
        if ('invalid' in message) {
          await this.deadLetter(entry, 'malformed', message.invalid, null, null, message.raw);
          continue;
        }
        const { query } = message;
        if (done.has(query.queryId) || this.recent.has(query.queryId) || this.previous.has(query.queryId)) {
          // completed before: a query appended twice, or an entry redelivered after some of its queries were done
          this.counters.duplicatesSuppressed += 1;
          continue;
        }
        const mark = `${entry.id} ${query.queryId}`;
        if (this.deadLettered.has(mark)) continue;
        const pending = this.handleOne(entry, query);
        const outcome = typeof pending === 'string' ? pending : await pending;
        if (outcome === 'retry') {
          unfinished += 1;
        } else if (outcome === 'dead-lettered') {
          if (this.deadLettered.size > 10_000) this.deadLettered.clear();
          this.deadLettered.add(mark);
        } else {
          completed.push(query.queryId);
          this.recent.add(query.queryId);
          if (completed.length >= s.batchSize) await record();
        }
      }
      if (unfinished === 0) finished.push(entry.id);
    }
    this.previous = this.recent;
    this.recent = new Set();
    // the batch's last write overlaps the next read; a failure leaves its entries pending, to be redelivered
    this.recording = record().catch((error: unknown) => this.logger.warn({ err: error, stream: s.stream }, 'could not record completions; the entries will be redelivered'));
  }

  /**
   * Runs one query: `completed` when it succeeded, `dead-lettered`, or
   * `retry` when it is to be redelivered. A synchronous handler that
   * succeeds is answered synchronously: no promise per query on the fast path.
   */
  private handleOne(entry: StreamEntry, query: Query): Outcome | Promise<Outcome> {
    const s = this.settings;
    query.processAttempts = entry.deliveries;
    if (entry.deliveries > s.maxAttempts) {
      return this.deadLetter(entry, 'max-attempts', `gave up after ${s.maxAttempts} attempts`, query, query.response, null).then(() => 'dead-lettered');
    }
    if (query.timeout_ms > 0 && Date.now() > query.query_ms + query.timeout_ms) {
      return this.deadLetter(entry, 'expired', `not processed within timeout_ms ${query.timeout_ms}`, query, null, null).then(() => 'dead-lettered');
    }
    let outcome: ReturnType<ProcessQuery>;
    try {
      outcome = this.process({ query, entry });
    } catch (error) {
      return this.failed(entry, query, error);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (settled) => this.settled(entry, query, settled),
        (error: unknown) => this.failed(entry, query, error),
      );
    }
    return this.settled(entry, query, outcome);
  }

  private settled(entry: StreamEntry, query: Query, outcome: 'done' | 'no-handler'): Outcome | Promise<Outcome> {
    if (outcome === 'no-handler') {
      return this.deadLetter(entry, 'no-handler', `no handler for action ${JSON.stringify(query.action)}`, query, null, null).then(() => 'dead-lettered');
    }
    this.counters.processed += 1;
    return 'completed';
  }

  private async failed(entry: StreamEntry, query: Query, error: unknown): Promise<Outcome> {
    this.counters.failed += 1;
    const lastError: ActionResult = { ok: false, errorName: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) };
    if (entry.deliveries >= this.settings.maxAttempts) {
      await this.deadLetter(entry, 'max-attempts', `handler failed ${entry.deliveries} times; last: ${lastError.message}`, query, lastError, null);
      return 'dead-lettered';
    }
    this.warnings.warn('handler failed', { err: error, queryId: query.queryId, attempt: entry.deliveries }, 'query handler failed; it will be redelivered');
    return 'retry';
  }

  private async deadLetter(entry: StreamEntry, reason: DeadLetter['reason'], detail: string, query: Query | null, lastError: ActionResult | null, raw: Buffer | null): Promise<void> {
    const s = this.settings;
    this.counters.deadLettered += 1;
    this.warnings.warn(`dead letter ${reason}`, { reason, detail, entryId: entry.id, stream: s.stream, queryId: query?.queryId }, 'query moved to the dead-letter store');
    await this.store.streamAdd(s.deadStream, this.codec.encode(this.letter(entry, reason, detail, query, lastError, raw)));
  }

  /** An entry that is no frame at all: dead-lettered whole and acknowledged in one step. */
  private async deadLetterEntry(entry: StreamEntry, detail: string): Promise<void> {
    const s = this.settings;
    this.counters.deadLettered += 1;
    this.warnings.warn('dead letter entry', { reason: 'malformed', detail, entryId: entry.id, stream: s.stream }, 'entry moved to the dead-letter store');
    const letter = this.letter(entry, 'malformed', detail, null, null, entry.payload);
    await this.store.streamDeadLetter(s.stream, s.group, entry.id, s.deadStream, this.codec.encode(letter), false);
  }

  private letter(entry: StreamEntry, reason: DeadLetter['reason'], detail: string, query: Query | null, lastError: ActionResult | null, raw: Buffer | null): Omit<DeadLetter, 'id'> {
    return { reason, detail, query, raw, stream: this.settings.stream, entryId: entry.id, attempts: entry.deliveries, failedAt: Date.now(), lastError };
  }
}
