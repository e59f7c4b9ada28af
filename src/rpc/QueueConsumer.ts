import type { Logger } from 'pino';
import type { Codec } from '../envelope/codec';
import type { ActionResult, Query } from '../envelope/types';
import { invalidQueryReason } from '../envelope/validate';
import type { StreamEntry, StreamStore } from '../route/StreamStore';

/** A batch read from the stream, decoded, with its completion checks. */
interface Batch {
  entries: StreamEntry[];
  decoded: Array<Query | Error>;
  done: boolean[];
}

/** Acknowledgements wait at most this long for the rest of their batch. */
const ACK_FLUSH_MS = 20;

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
  /** The raw bytes, when the entry did not decode as a query. */
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
  /** Non-empty batches taken from the stream (processed / batches = mean batch size). */
  batches: number;
}

/** Processes one query; resolves when done, rejects when it failed (the entry is then redelivered). Returns false when no handler exists. */
export type ProcessQuery = (delivery: Delivery) => Promise<'done' | 'no-handler'>;

/**
 * Reads one consumer group of one stream and processes its entries one at a
 * time, in stream order: new entries, its own pending entries after a restart
 * (same consumer name), and entries left pending by a dead consumer after the
 * visibility timeout. A query is acknowledged (and its completion recorded in
 * the same atomic step) only after its handler succeeded; a failure leaves it
 * pending, to be redelivered with `processAttempts` counted; after
 * `maxAttempts` it goes to the dead-letter stream. Entries that do not decode
 * as a query, have no handler or expired go there at once. Nothing here
 * throws out of the loop: Redis errors are logged and retried.
 */
export class QueueConsumer {
  private running = false;
  private loop: Promise<void> | undefined;
  private lastClaimAt = 0;
  private acknowledging: Promise<void> = Promise.resolve();
  /**
   * Query ids processed in this batch and the one before: a query appended
   * twice (a sender's retry after a lost reply) can land in the same or the
   * next batch, before the first copy's completion record is written.
   */
  private recent = new Set<string>();
  private previous = new Set<string>();
  readonly counters: QueueConsumerStats = { processed: 0, failed: 0, deadLettered: 0, duplicatesSuppressed: 0, redelivered: 0, batches: 0 };

  constructor(
    private readonly store: StreamStore,
    private readonly codec: Codec,
    private readonly settings: QueueConsumerSettings,
    private readonly process: ProcessQuery,
    private readonly logger: Logger,
  ) {}

  /** Starts the loop (the group must exist). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops taking entries and waits for the one in progress. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
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
          const own = await this.store.streamRead(s.stream, s.group, s.consumer, 'own-pending', s.batchSize, 0);
          await this.handle(await this.prepare(own));
          ownPendingDone = own.length < s.batchSize;
          continue;
        }
        if (Date.now() - this.lastClaimAt >= s.visibilityTimeoutMs / 2) {
          this.lastClaimAt = Date.now();
          const claimed = await this.store.streamClaimIdle(s.stream, s.group, s.consumer, s.visibilityTimeoutMs, s.batchSize);
          this.counters.redelivered += claimed.length;
          await this.handle(await this.prepare(claimed));
          if (claimed.length === s.batchSize) this.lastClaimAt = 0;
        }
        const fresh = await (prefetched ?? this.readFresh());
        // a full batch means more are waiting: fetch (and check) the next while this one is processed
        prefetched = fresh.entries.length === s.batchSize && this.running ? this.readFresh() : undefined;
        prefetched?.catch(() => undefined); // its failure surfaces when awaited
        await this.handle(fresh);
        backoffMs = 50;
      } catch (error) {
        prefetched = undefined;
        if (!this.running) break;
        this.logger.warn({ err: error, stream: s.stream, group: s.group }, 'queue read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    // entries fetched ahead are ours already: process them rather than leave them to the visibility timeout
    if (prefetched) {
      await prefetched.then((batch) => this.handle(batch)).catch((error: unknown) => this.logger.warn({ err: error }, 'could not finish the last batch'));
    }
    await this.acknowledging;
  }

  private async readFresh(): Promise<Batch> {
    const s = this.settings;
    const blockMs = Math.max(1, Math.min(s.blockMs, s.visibilityTimeoutMs / 2));
    return this.prepare(await this.store.streamRead(s.stream, s.group, s.consumer, '>', s.batchSize, blockMs));
  }

  /**
   * Decodes a batch and checks which of its queries were completed before
   * (one round trip for the batch). Done ahead for prefetched batches, so a
   * query completed in the batch before is caught by {@link recent} instead.
   */
  private async prepare(entries: StreamEntry[]): Promise<Batch> {
    if (entries.length === 0) return { entries, decoded: [], done: [] };
    const s = this.settings;
    const decoded = entries.map((entry) => this.decode(entry));
    // a record lives one to two bucket lengths: check the current bucket and the one before
    const bucket = Math.floor(Date.now() / s.doneTtlMs);
    const done = await this.store.whichDone(
      [s.doneBucketKey(bucket), s.doneBucketKey(bucket - 1)],
      decoded.map((query) => (query instanceof Error ? '' : query.queryId)),
    );
    return { entries, decoded, done };
  }

  /**
   * Processes a batch in stream order. Acknowledgements (with their
   * completion records) leave together, at the end of the batch or as soon as
   * the batch has been running for {@link ACK_FLUSH_MS}, so fast handlers cost
   * one write per batch and a slow handler does not hold the others'
   * acknowledgements. A batch is finished even when stop() was called meanwhile.
   */
  private async handle({ entries, decoded, done }: Batch): Promise<void> {
    if (entries.length === 0) return;
    this.counters.batches += 1;
    const s = this.settings;
    const ids: string[] = [];
    const queryIds: string[] = [];
    let since = Date.now();
    const flush = async (): Promise<void> => {
      if (ids.length === 0) return;
      const batch = ids.splice(0);
      const completed = queryIds.splice(0);
      since = Date.now();
      const current = Math.floor(Date.now() / s.doneTtlMs);
      await this.acknowledging;
      // entries stay in the stream until the periodic trim (cheaper than a delete per entry)
      await this.store.streamAck(s.stream, s.group, batch, { delete: false, done: { key: s.doneBucketKey(current), ids: completed, ttlMs: 2 * s.doneTtlMs } });
    };
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const query = decoded[i];
      if (query instanceof Error) {
        await this.deadLetter(entry, 'malformed', query.message, null, null);
        continue;
      }
      if (done[i] || this.recent.has(query.queryId) || this.previous.has(query.queryId)) {
        // processed before: a query appended twice, or redelivered after its completion was recorded
        this.counters.duplicatesSuppressed += 1;
      } else if (!(await this.handleOne(entry, query))) {
        continue;
      }
      ids.push(entry.id);
      queryIds.push(query.queryId);
      this.recent.add(query.queryId);
      if (Date.now() - since >= ACK_FLUSH_MS) await flush();
    }
    this.previous = this.recent;
    this.recent = new Set();
    // the last acknowledgement of a batch overlaps the next read; the next flush (or stop) waits for it
    this.acknowledging = flush().catch((error: unknown) => this.logger.warn({ err: error, stream: s.stream }, 'acknowledgement failed; the queries will be redelivered'));
  }

  private decode(entry: StreamEntry): Query | Error {
    try {
      if (entry.payload.length > this.settings.maxPayloadBytes) {
        return new Error(`entry of ${entry.payload.length} bytes exceeds limits.maxPayloadBytes (${this.settings.maxPayloadBytes})`);
      }
      const decoded = this.codec.decode(entry.payload);
      const reason = invalidQueryReason(decoded);
      return reason === undefined ? (decoded as Query) : new Error(reason);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }

  /** Runs the handler; resolves true when the query is done and is to be acknowledged. */
  private async handleOne(entry: StreamEntry, query: Query): Promise<boolean> {
    const s = this.settings;
    query.processAttempts = entry.deliveries;
    if (entry.deliveries > s.maxAttempts) {
      await this.deadLetter(entry, 'max-attempts', `gave up after ${s.maxAttempts} attempts`, query, query.response);
      return false;
    }
    if (query.timeout_ms > 0 && Date.now() > query.query_ms + query.timeout_ms) {
      await this.deadLetter(entry, 'expired', `not processed within timeout_ms ${query.timeout_ms}`, query, null);
      return false;
    }
    let outcome: 'done' | 'no-handler';
    try {
      outcome = await this.process({ query, entry });
    } catch (error) {
      this.counters.failed += 1;
      this.logger.warn({ err: error, queryId: query.queryId, attempt: entry.deliveries }, 'query handler failed; it will be redelivered');
      if (entry.deliveries >= s.maxAttempts) {
        const lastError: ActionResult = { ok: false, errorName: error instanceof Error ? error.name : 'Error', message: error instanceof Error ? error.message : String(error) };
        await this.deadLetter(entry, 'max-attempts', `handler failed ${entry.deliveries} times; last: ${lastError.message}`, query, lastError);
      }
      return false;
    }
    if (outcome === 'no-handler') {
      await this.deadLetter(entry, 'no-handler', `no handler for action ${JSON.stringify(query.action)}`, query, null);
      return false;
    }
    this.counters.processed += 1;
    return true;
  }

  private async deadLetter(entry: StreamEntry, reason: DeadLetter['reason'], detail: string, query: Query | null, lastError: ActionResult | null): Promise<void> {
    const s = this.settings;
    const record: Omit<DeadLetter, 'id'> = {
      reason,
      detail,
      query,
      raw: query === null ? entry.payload : null,
      stream: s.stream,
      entryId: entry.id,
      attempts: entry.deliveries,
      failedAt: Date.now(),
      lastError,
    };
    this.counters.deadLettered += 1;
    this.logger.warn({ reason, detail, entryId: entry.id, stream: s.stream, queryId: query?.queryId }, 'query moved to the dead-letter store');
    await this.store.streamDeadLetter(s.stream, s.group, entry.id, s.deadStream, this.codec.encode(record), false);
  }
}
