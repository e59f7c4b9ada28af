import type { FrameSealer } from '../envelope/FrameSealer';
import { attest } from '../envelope/sender';
import { AuthenticationError } from '../errors/AuthenticationError';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { frameMessages, type Codec } from '../envelope/codec';
import type { ActionResult, Query, QueryType } from '../envelope/types';
import { invalidQueryReason } from '../envelope/validate';
import { tallyInvalid, type InvalidTally } from '../log/MalformedReports';
import { ValidationError } from '../errors/ValidationError';
import type { ClaimState, DeadLetterStore, EntryQueries, StreamEntry, StreamStore } from '../route/StreamStore';
import { TransientMap } from '../route/TransientMap';

/** Why a query went to the dead-letter store, and what it was. */
export interface DeadLetter {
  /** Id of the dead-letter entry (for replay). */
  id: string;
  /**
   * Why it was given up: `max-attempts`, `malformed`, `no-handler`, `expired`, `unauthenticated`; or `unreadable`:
   * the dead letter itself could not be read (written by another version, edited in Redis), listed so that the
   * others still are: `detail` says why, `raw` holds its stored bytes (cut as for `malformed`), `query` is null (it
   * is never replayed), `stream` and `entryId` name the dead-letter entry itself, `attempts` is 0 and `failedAt`
   * the entry's time.
   */
  reason: 'max-attempts' | 'malformed' | 'no-handler' | 'expired' | 'unauthenticated' | 'unreadable';
  /** Human-readable detail. */
  detail: string;
  /** The query, when it decoded. */
  query: Query | null;
  /**
   * For `malformed` only, else null: the entry's bytes as received (the whole
   * entry also when it decoded as a frame and only some of its messages failed
   * the query checks). At most `queues.maxDeadLetterRawBytes` of them.
   */
  raw: Buffer | null;
  /** Present whenever `raw` is not null: the length of the bytes it was taken from (more than `raw` holds when it was cut). */
  rawBytes?: number;
  /**
   * Present when the entry decoded as a frame but messages of it failed the
   * query checks: how many (one letter stands for all of them; `detail`
   * gives the reasons of the first three). Its queries ran on their own.
   */
  invalidMessages?: number;
  /** The stream it came from. */
  stream: string;
  /** The id of the entry it came from in that stream. */
  entryId: string;
  /** Delivery attempts made. */
  attempts: number;
  /** When it was given up, ms since the epoch. */
  failedAt: number;
  /** The last handler error (`errorName`, `message`, and `code` when it had a string one), for `max-attempts`. */
  lastError: ActionResult | null;
}

/** What a consumer hands to the processing function. */
export interface Delivery {
  query: Query;
  entry: StreamEntry;
  /**
   * Renews this query's claim now (and, with `autoExtend` off, lets it be
   * renewed until `ms` from now); resolves false when the claim was lost,
   * so another instance may process the query too.
   */
  extend: (ms?: number) => Promise<boolean>;
}

/** Settings of one consumer. */
export interface QueueConsumerSettings {
  stream: string;
  /** The service whose stream it is: an envelope naming another `serviceNameDest` is malformed here. */
  service: string;
  /** The one query type the stream holds: an envelope of another type is malformed here. */
  type: QueryType.FIRE_AND_FORGET | QueryType.BROADCAST;
  group: string;
  consumer: string;
  /** The dead-letter stream, its cap and its counter of dropped letters. */
  dead: DeadLetterStore;
  /** Raw bytes of a malformed entry kept in its dead letter at most. */
  maxDeadLetterRawBytes: number;
  /** Key of the completion records of one time bucket (buckets are `doneTtlMs` long). */
  doneBucketKey: (bucket: number) => string;
  /** Key of the claims of this group (a hash by query id). */
  claimsKey: string;
  doneTtlMs: number;
  visibilityTimeoutMs: number;
  /** Renew the claim of a running query for as long as its handler runs (else only up to visibilityTimeoutMs, or what the handler asks with extend). */
  autoExtend: boolean;
  maxAttempts: number;
  /** Entries read at once, and queries processed between two writes of completion records. */
  batchSize: number;
  blockMs: number;
  maxPayloadBytes: number;
}

/** Counters of one consumer. */
export interface QueueConsumerStats {
  /** Queries whose handler finished (their completion was acknowledged). */
  processed: number;
  /** Handler runs that threw or rejected (each is redelivered until `queues.maxAttempts`). */
  failed: number;
  /** Queries given up and moved to the dead-letter store (attempts exhausted, malformed, no handler, expired). */
  deadLettered: number;
  /** Copies of a query already done or held by another consumer, skipped (never run twice). */
  duplicatesSuppressed: number;
  /** Queries delivered again: after a failure, or taken over from a consumer whose claim lapsed. */
  redelivered: number;
  /** Non-empty batches of entries taken from the stream. */
  batches: number;
  /** Queries this consumer held and lost before running them (its claim lapsed: the process was stalled or cut from Redis for longer than visibilityTimeoutMs, or, with autoExtend off, a handler outran its claim). */
  claimsLost: number;
  /** Times the consumer group was found gone (a Redis restarted without persistence, XGROUP DESTROY) and created again. */
  groupsRecreated: number;
}

/** Processes one query: done (or a promise of it), or no handler; throwing or rejecting means it failed (it is then redelivered). */
export type ProcessQuery = (delivery: Delivery) => 'done' | 'no-handler' | Promise<'done' | 'no-handler'>;

/** What became of one query. */
type Outcome = 'completed' | 'dead-lettered' | 'retry';

/** One query of a frame, with what claiming it found. */
type Message = { query: Query; claim: ClaimState };

/** One stream entry: a frame of queries (what one sender wrote in one tick), decoded. */
interface DecodedEntry {
  entry: StreamEntry;
  /** The frame's queries; an Error alone when the entry is no frame. */
  messages: Message[] | Error;
  /** Its messages that failed the query checks, when there are any: one dead letter for all of them. */
  invalid?: InvalidTally;
}

/** A batch of entries read from the stream, decoded and claimed. */
interface Batch {
  entries: DecodedEntry[];
  /** How many entries were asked for (a full answer means more are waiting). */
  asked: number;
}

/** A batch read and decoded, its queries not yet claimed. */
interface Unclaimed extends Batch {
  /** The queries to claim, entry by entry. */
  requests: EntryQueries[];
  /** The messages that are queries, in the order of `requests`: each gets its claim state. */
  queries: Array<{ query: Query; claim: ClaimState }>;
}

/** What one consumer step brought: the batch it claimed, and the entries it read next (not yet claimed). */
interface Stepped {
  batch: Batch;
  next: Unclaimed;
  groupGone: boolean;
}

/** Something this consumer holds in Redis: a pending entry or a query's claim. */
interface Held {
  /** Local time until which it is surely still held: when the last successful renewal (or the read) was sent, plus the visibility timeout. */
  until: number;
}

/** A query whose handler is running. */
interface Running {
  entryId: string;
  /** With autoExtend off: the claim is renewed up to this time only. */
  deadline: number;
}

/** Why the consumer loop met an error: the group is gone (Redis answers NOGROUP on both routes). */
function isGroupGone(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOGROUP');
}

/**
 * Reads one consumer group of one stream and processes its queries in stream
 * order. Each entry is a frame holding the queries one sender wrote in one
 * tick (a lone envelope written by a foreign client is accepted too).
 *
 * Every query is claimed before it runs (one atomic step per batch, see
 * {@link StreamStore.claimQueries}): a query with a completion record, or
 * held by a live claim from another entry, is a duplicate and is skipped, so
 * copies of one `queryId` in different entries, read by different instances
 * at the same time, run once. Claims and entries this consumer holds are
 * renewed every third of the visibility timeout while it lives (while a
 * handler runs too, unless `autoExtend` is off): another instance takes a
 * query only once its holder stopped renewing for `visibilityTimeoutMs`. A
 * consumer checks before each query that it still holds it.
 *
 * A query is completed once its handler succeeded; completions are recorded
 * (and their claims deleted) every `batchSize` queries and at the end of
 * each batch, that last write overlapping the next batch. A query may instead
 * go to the dead-letter store (malformed, no handler, expired, or failed
 * `maxAttempts` times). An entry is acknowledged once each of its queries is
 * completed, dead-lettered or a duplicate. An entry with a failed query stays
 * pending and is redelivered after the visibility timeout with
 * `processAttempts` counted, its completed queries being skipped. So a query
 * is processed twice only when its instance dies, stalls or loses Redis for
 * longer than the visibility timeout after the handler started and before its
 * record was written: at most 2 x `batchSize` queries per consumer and fault.
 *
 * Nothing here throws out of the loop: Redis errors are logged and retried; a
 * consumer group found gone (by a read, or by a renewal while handlers run)
 * is created again at once (from the start of the stream) and counted; the
 * claims of queries running or waiting here are renewed all the same.
 */
export class QueueConsumer {
  private running = false;
  private loop: Promise<void> | undefined;
  private lastClaimAt = 0;
  /**
   * `<entry id> <query id>` of queries this consumer dead-lettered from
   * entries that stay pending (another query of theirs is to be retried), so
   * a redelivery does not dead-letter them twice. Dead-lettered queries get
   * no completion record: a replay must process them.
   */
  private readonly deadLettered = new Set<string>();
  /** The last record write, still in flight while the next batch is read and processed. */
  private recording: Promise<void> = Promise.resolve();
  /**
   * Processed and not yet written: entries to acknowledge and queries to
   * record. Written by the next consumer step, or on their own (the stream
   * ran dry, `batchSize` queries completed within one batch, stop).
   */
  private readonly unwritten: { ids: string[]; queryIds: string[] } = { ids: [], queryIds: [] };
  /** Mean queries per entry (moving average): entries are read `batchSize` queries' worth at a time. */
  private queriesPerEntry = 1;
  /** Entries read (or claimed) and not yet acknowledged or given up, by id (this and the two below: TransientMaps, as entries come and go with every message; see there why). */
  private readonly heldEntries = new TransientMap<string, Held>();
  /** Claims of queries not yet recorded or given up, by query id. */
  private readonly heldClaims = new TransientMap<string, Held>();
  /** Handlers running now, by query id. */
  private readonly runningNow = new TransientMap<string, Running>();
  private renewTimer: NodeJS.Timeout | undefined;
  private renewal: Promise<void> | undefined;
  readonly counters: QueueConsumerStats = { processed: 0, failed: 0, deadLettered: 0, duplicatesSuppressed: 0, redelivered: 0, batches: 0, claimsLost: 0, groupsRecreated: 0 };

  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;

  constructor(
    private readonly store: StreamStore,
    private readonly codec: Codec,
    /** Opens sealed entries (verifies, decrypts); none when authentication is off. */
    private readonly sealer: FrameSealer | undefined,
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
    const everyMs = Math.max(10, Math.floor(this.settings.visibilityTimeoutMs / 3));
    this.renewTimer = setInterval(() => void this.renewAll(), everyMs);
    // renewing serves work in progress, which keeps the process alive by itself; a stop() that never completes
    // (its loop blocked on a Redis that is gone, the client closed by its timeout) must not keep it alive forever
    this.renewTimer.unref();
    this.loop = this.run();
  }

  /** Stops at once without waiting for Redis: the claims of the batch in progress are no longer renewed (they expire and are redelivered). */
  abandon(): void {
    this.running = false;
    clearInterval(this.renewTimer);
  }

  /** Stops taking entries and waits for the batch in progress. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    clearInterval(this.renewTimer);
    await this.renewal;
    this.warnings.flush();
  }

  private async run(): Promise<void> {
    const s = this.settings;
    let backoffMs = 50;
    // what this consumer held when it stopped (same consumer name after a restart) comes first
    let ownPendingDone = false;
    // under load, one step per batch: it writes what the last batch did, claims the batch read before, and reads the next
    let stepping: Promise<Stepped> | undefined;
    while (this.running) {
      try {
        if (!ownPendingDone) {
          const asked = this.entriesPerRead();
          const readAt = Date.now();
          const own = await this.store.streamRead(s.stream, s.group, s.consumer, 'own-pending', asked, 0);
          await this.handle(await this.prepare(own, asked, readAt));
          ownPendingDone = own.length < asked;
          continue;
        }
        if (Date.now() - this.lastClaimAt >= s.visibilityTimeoutMs / 2) {
          this.lastClaimAt = Date.now();
          const asked = this.entriesPerRead();
          const readAt = Date.now();
          const claimed = await this.store.streamClaimIdle(s.stream, s.group, s.consumer, s.visibilityTimeoutMs, asked);
          this.counters.redelivered += claimed.length;
          if (claimed.length > 0) this.logger.debug({ stream: s.stream, group: s.group, claimed: claimed.length, idleMs: s.visibilityTimeoutMs }, 'claimed entries idle past the visibility timeout');
          await this.handle(await this.prepare(claimed, asked, readAt));
          if (claimed.length === asked) this.lastClaimAt = 0;
        }
        if (stepping === undefined) {
          // the stream ran dry: what was processed is written while the next read waits
          this.writeUnwritten();
          const fresh = await this.readFresh();
          if (fresh.entries.length === 0) continue;
          stepping = this.step(fresh);
        }
        const { batch, next, groupGone } = await stepping;
        // entries were read: claim them (and read more when the read was full) while this batch is processed
        stepping = next.entries.length > 0 ? this.step(next) : undefined;
        stepping?.catch(() => undefined); // its failure surfaces when awaited
        if (stepping === undefined) this.writeUnwritten();
        if (groupGone) await this.recreateGroup();
        await this.handle(batch);
        backoffMs = 50;
      } catch (error) {
        stepping = undefined;
        // what was read and not processed is left to lapse (redelivered after the visibility timeout), not renewed forever
        this.heldEntries.clear();
        this.heldClaims.clear();
        if (!this.running) break;
        if (isGroupGone(error) && (await this.recreateGroup())) continue;
        this.warnings.warn('read failed', { err: error, stream: s.stream, group: s.group }, 'queue read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoffMs).unref());
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    // entries read ahead are ours already: process them rather than leave them to the visibility timeout (steps read no more now)
    try {
      while (stepping !== undefined) {
        const { batch, next } = await stepping;
        stepping = next.entries.length > 0 ? this.step(next) : undefined;
        await this.handle(batch);
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'could not finish the last batch');
    }
    this.writeUnwritten();
    await this.recording;
  }

  /**
   * The group is gone, and with it every pending entry. Creates it again
   * from the start of the stream (completion records suppress what was
   * processed before, live claims what is running or waiting somewhere);
   * true when the group exists again. Called by the loop when a read finds
   * the group gone, and by a renewal that finds it gone while handlers run.
   */
  private async recreateGroup(): Promise<boolean> {
    const s = this.settings;
    try {
      const created = await this.store.streamEnsureGroup(s.stream, s.group, '0');
      if (created) {
        this.counters.groupsRecreated += 1;
        this.warnings.warn('group recreated', { stream: s.stream, group: s.group, times: this.counters.groupsRecreated }, 'consumer group was gone (Redis restarted without persistence, or the group was destroyed); created it again');
      }
      return true;
    } catch {
      return false; // Redis unreachable: the loop's retry and its warning take over
    }
  }

  /** A blocking read of new entries, decoded (their queries not claimed yet). */
  private async readFresh(): Promise<Unclaimed> {
    const s = this.settings;
    const blockMs = Math.max(1, Math.min(s.blockMs, s.visibilityTimeoutMs / 2));
    const asked = this.entriesPerRead();
    const readAt = Date.now();
    return this.unclaimed(await this.store.streamRead(s.stream, s.group, s.consumer, '>', asked, blockMs), asked, readAt);
  }

  /** Entries holding about `batchSize` queries. */
  private entriesPerRead(): number {
    return Math.max(1, Math.min(this.settings.batchSize, Math.round(this.settings.batchSize / this.queriesPerEntry)));
  }

  /** The two completion-record buckets a query's record may be in now: the current one (written) and the one before. */
  private doneKeys(): [string, string] {
    const s = this.settings;
    const bucket = Math.floor(Date.now() / s.doneTtlMs);
    return [s.doneBucketKey(bucket), s.doneBucketKey(bucket - 1)];
  }

  /** Decodes a batch and claims its queries (one round trip for the batch). */
  private async prepare(entries: StreamEntry[], asked: number, readAt: number): Promise<Batch> {
    if (entries.length === 0) return { entries: [], asked };
    const s = this.settings;
    const read = this.unclaimed(entries, asked, readAt);
    const claimAt = Date.now();
    return this.claimed(read, await this.store.claimQueries(this.doneKeys(), s.claimsKey, s.consumer, s.visibilityTimeoutMs, read.requests), claimAt);
  }

  /**
   * One consumer step ({@link StreamStore.consumeStep}): writes what was
   * processed, claims `read`'s queries and, when `read` was a full answer
   * and the consumer runs on, reads the next entries.
   */
  private async step(read: Unclaimed): Promise<Stepped> {
    const s = this.settings;
    const { ids, queryIds } = this.takeUnwritten();
    const asked = read.entries.length === read.asked && this.running ? this.entriesPerRead() : 0;
    const sentAt = Date.now();
    try {
      const result = await this.store.consumeStep({
        stream: s.stream,
        group: s.group,
        consumer: s.consumer,
        doneKeys: this.doneKeys(),
        doneTtlMs: 2 * s.doneTtlMs,
        claimsKey: s.claimsKey,
        claimTtlMs: s.visibilityTimeoutMs,
        ack: ids,
        completed: queryIds,
        claim: read.requests,
        read: asked,
      });
      return { batch: this.claimed(read, result.states, sentAt), next: this.unclaimed(result.entries, asked, sentAt), groupGone: result.groupGone };
    } finally {
      this.written(ids, queryIds);
    }
  }

  /** Decodes entries just read; their queries are yet to be claimed. */
  private unclaimed(entries: StreamEntry[], asked: number, readAt: number): Unclaimed {
    const s = this.settings;
    for (const entry of entries) this.heldEntries.set(entry.id, { until: readAt + s.visibilityTimeoutMs });
    const decoded = entries.map((entry) => this.decode(entry));
    const requests: EntryQueries[] = [];
    const queries: Array<{ query: Query; claim: ClaimState }> = [];
    for (const { entry, messages } of decoded) {
      if (messages instanceof Error) continue;
      const queryIds: string[] = [];
      for (const m of messages) {
        queryIds.push(m.query.queryId);
        queries.push(m);
      }
      requests.push({ entryId: entry.id, queryIds });
    }
    if (entries.length > 0) this.queriesPerEntry = 0.8 * this.queriesPerEntry + 0.2 * Math.max(1, queries.length / entries.length);
    return { entries: decoded, asked, requests, queries };
  }

  /** Gives each query of `read` its claim state (in the order of its requests); the claimed ones are held from `claimAt`. */
  private claimed(read: Unclaimed, states: ClaimState[], claimAt: number): Batch {
    const until = claimAt + this.settings.visibilityTimeoutMs;
    states.forEach((state, i) => {
      const message = read.queries[i];
      message.claim = state;
      if (state === 'claimed') this.heldClaims.set(message.query.queryId, { until });
    });
    return { entries: read.entries, asked: read.asked };
  }

  /** Takes what was processed and not yet written. */
  private takeUnwritten(): { ids: string[]; queryIds: string[] } {
    return { ids: this.unwritten.ids.splice(0), queryIds: this.unwritten.queryIds.splice(0) };
  }

  /** Written, or left to the visibility timeout (redelivered, the completions not recorded): no longer renewed. */
  private written(ids: string[], queryIds: string[]): void {
    for (const id of ids) this.heldEntries.delete(id);
    for (const queryId of queryIds) this.heldClaims.delete(queryId);
  }

  /** Writes what was processed on its own (acknowledges entries, records completions, deletes their claims), after the writes before it. */
  private writeUnwritten(): Promise<void> {
    if (this.unwritten.ids.length === 0 && this.unwritten.queryIds.length === 0) return this.recording;
    const s = this.settings;
    const { ids, queryIds } = this.takeUnwritten();
    const previous = this.recording;
    const write = async (): Promise<void> => {
      await previous; // writes stay in order, and at most one is in flight
      try {
        await this.store.streamAck(s.stream, s.group, ids, { delete: false, done: { key: this.doneKeys()[0], ids: queryIds, ttlMs: 2 * s.doneTtlMs }, releaseClaims: { key: s.claimsKey, queryIds } });
      } finally {
        this.written(ids, queryIds);
      }
    };
    return (this.recording = write().catch((error: unknown) => void this.warnings.warn('record failed', { err: error, stream: s.stream }, 'could not record completions; the entries will be redelivered')));
  }

  private decode(entry: StreamEntry): DecodedEntry {
    const s = this.settings;
    try {
      if (entry.payload.length > s.maxPayloadBytes + (this.sealer === undefined ? 1024 : 4096)) throw new Error(`entry of ${entry.payload.length} bytes exceeds limits.maxPayloadBytes (${s.maxPayloadBytes})`);
      // an entry is read again after a crash or a visibility timeout, by design: no replay window here (duplicates are caught by queryId)
      const opened = this.sealer?.open(entry.payload, s.stream, false);
      const decoded = this.codec.decode(opened?.inner ?? entry.payload);
      // a foreign writer may append a lone envelope instead of a frame
      const messages = Array.isArray(decoded) ? frameMessages(decoded) : [decoded];
      if (opened?.sender.verified) {
        const forged = attest(messages, opened.sender);
        if (forged !== undefined) throw (this.sealer as FrameSealer).refuseClaim(s.stream, forged);
      }
      const queries: Message[] = [];
      let invalid: InvalidTally | undefined;
      for (const message of messages) {
        const reason = invalidQueryReason(message) ?? misplacedReason(message as Query, s);
        if (reason === undefined) queries.push({ query: message as Query, claim: 'held-here' });
        else invalid = tallyInvalid(invalid, reason);
      }
      return invalid === undefined ? { entry, messages: queries } : { entry, messages: queries, invalid };
    } catch (error) {
      return { entry, messages: error instanceof Error ? error : new Error(String(error)) };
    }
  }

  /**
   * Processes a batch in stream order. Completions and entries to
   * acknowledge are left to the next write (the next step, or a write of
   * their own), or written at once every `batchSize` completions.
   */
  private async handle({ entries }: Batch): Promise<void> {
    if (entries.length === 0) return;
    this.counters.batches += 1;
    const s = this.settings;
    const { ids: finished, queryIds: completed } = this.unwritten;
    for (const { entry, messages, invalid } of entries) {
      if (messages instanceof Error) {
        await this.deadLetterEntry(entry, messages.message, messages instanceof AuthenticationError ? 'unauthenticated' : 'malformed');
        this.heldEntries.delete(entry.id);
        continue;
      }
      if (invalid !== undefined) await this.deadLetterInvalid(entry, messages.length + invalid.count, invalid);
      let unfinished = 0;
      let lost = false;
      for (const message of messages) {
        // more than batchSize completions in one batch: written now, so that no more wait unwritten
        if (completed.length >= s.batchSize) await this.writeUnwritten();
        const { query, claim } = message;
        if (claim === 'done' || claim === 'held-elsewhere') {
          // completed before, or in hand elsewhere with an entry of its own that keeps it: a copy
          this.counters.duplicatesSuppressed += 1;
          continue;
        }
        const queryId = query.queryId;
        if (claim === 'held-here' || lost || !this.holds(entry.id, queryId)) {
          // another consumer runs it from this entry, or this consumer's hold lapsed: the entry stays pending for whoever holds it
          if (claim === 'claimed') {
            lost = true;
            this.counters.claimsLost += 1;
            this.heldClaims.delete(queryId);
          }
          unfinished += 1;
          continue;
        }
        const pending = this.deadLettered.size > 0 && this.deadLettered.has(`${entry.id} ${queryId}`) ? 'dead-lettered' : this.handleOne(entry, query);
        // a synchronous outcome is used as is: no promise turn per query on the fast path
        const outcome = typeof pending === 'string' ? pending : await pending;
        if (outcome === 'completed') {
          completed.push(queryId);
          continue;
        }
        await this.release(queryId);
        if (outcome === 'retry') {
          unfinished += 1;
        } else {
          if (this.deadLettered.size > 10_000) this.deadLettered.clear();
          this.deadLettered.add(`${entry.id} ${queryId}`);
        }
      }
      if (unfinished === 0) finished.push(entry.id);
      else this.heldEntries.delete(entry.id); // no longer renewed: redelivered after the visibility timeout
    }
  }

  /** Gives up a query's claim at once (it failed, or went to the dead letters): another delivery may claim it. */
  private async release(queryId: string): Promise<void> {
    this.heldClaims.delete(queryId);
    try {
      await this.store.releaseClaims(this.settings.claimsKey, [queryId], this.settings.consumer);
    } catch (error) {
      this.warnings.warn('release failed', { err: error, queryId }, 'could not release a claim; it lapses after visibilityTimeoutMs');
    }
  }

  /** Whether this consumer surely still holds an entry and a query's claim. */
  private holds(entryId: string, queryId: string): boolean {
    const now = Date.now();
    return (this.heldEntries.get(entryId)?.until ?? 0) > now && (this.heldClaims.get(queryId)?.until ?? 0) > now;
  }

  /**
   * Renews every entry and claim this consumer holds, in one step; a running
   * query's (with autoExtend off) only up to its deadline.
   */
  private renewAll(): Promise<void> {
    if (this.renewal !== undefined) return this.renewal;
    const now = Date.now();
    const entryIds = [...this.heldEntries.keys()];
    let queryIds = [...this.heldClaims.keys()];
    if (!this.settings.autoExtend) {
      const overdue = [...this.runningNow.entries()].filter(([, running]) => running.deadline <= now);
      const lapsing = new Set(overdue.map(([, running]) => running.entryId));
      queryIds = queryIds.filter((queryId) => !overdue.some(([overdueId]) => overdueId === queryId));
      return (this.renewal = this.renew(entryIds.filter((id) => !lapsing.has(id)), queryIds).finally(() => (this.renewal = undefined)));
    }
    return (this.renewal = this.renew(entryIds, queryIds).finally(() => (this.renewal = undefined)));
  }

  /** Renews the given entries and claims; what was not renewed keeps its time and lapses. */
  private async renew(entryIds: string[], queryIds: string[]): Promise<void> {
    if (entryIds.length === 0 && queryIds.length === 0) return;
    const s = this.settings;
    const sentAt = Date.now();
    try {
      const { entries, claims, groupGone } = await this.store.renewClaims(s.stream, s.group, s.consumer, entryIds, s.claimsKey, queryIds, s.visibilityTimeoutMs);
      // the claims were renewed all the same; the group is created again now, not when a handler ends and the loop reads
      if (groupGone) await this.recreateGroup();
      entryIds.forEach((id, i) => {
        const held = this.heldEntries.get(id);
        if (held) held.until = entries[i] ? sentAt + s.visibilityTimeoutMs : 0;
      });
      queryIds.forEach((queryId, i) => {
        const held = this.heldClaims.get(queryId);
        if (held) held.until = claims[i] ? sentAt + s.visibilityTimeoutMs : 0;
      });
    } catch (error) {
      this.warnings.warn('renew failed', { err: error, stream: s.stream }, 'could not renew claims; they lapse after visibilityTimeoutMs unless a later renewal succeeds');
    }
  }

  /** A handler's explicit extension: renews its query's entry and claim now, and (autoExtend off) pushes its deadline. */
  private async extend(queryId: string, ms: number | undefined): Promise<boolean> {
    const s = this.settings;
    const running = this.runningNow.get(queryId);
    if (running === undefined) return false;
    if (ms !== undefined && (!Number.isSafeInteger(ms) || ms <= 0)) throw new ValidationError(`extend(ms): ms must be a positive integer; received ${String(ms)}`);
    running.deadline = Math.max(running.deadline, Date.now() + (ms ?? s.visibilityTimeoutMs));
    if (!this.holds(running.entryId, queryId)) return false;
    await this.renew([running.entryId], [queryId]);
    return this.holds(running.entryId, queryId);
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
    const queryId = query.queryId;
    this.runningNow.set(queryId, { entryId: entry.id, deadline: Date.now() + s.visibilityTimeoutMs });
    let outcome: ReturnType<ProcessQuery>;
    try {
      outcome = this.process({ query, entry, extend: (ms) => this.extend(queryId, ms) });
    } catch (error) {
      this.runningNow.delete(queryId);
      return this.failed(entry, query, error);
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (settled) => {
          this.runningNow.delete(queryId);
          return this.settled(entry, query, settled);
        },
        (error: unknown) => {
          this.runningNow.delete(queryId);
          return this.failed(entry, query, error);
        },
      );
    }
    this.runningNow.delete(queryId);
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
    // the handler's code says what went wrong in a form a program can test, as an RPC error reply keeps it
    const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
    if (typeof code === 'string') lastError.code = code;
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
    await this.store.streamDeadLetter(s.stream, s.group, null, s.dead, this.codec.encode(this.letter(entry, reason, detail, query, lastError, raw)), false);
  }

  /** An entry that is no frame at all: dead-lettered whole and acknowledged in one step. */
  private async deadLetterEntry(entry: StreamEntry, detail: string, reason: 'malformed' | 'unauthenticated'): Promise<void> {
    const s = this.settings;
    this.counters.deadLettered += 1;
    this.warnings.warn(`dead letter entry ${reason}`, { reason, detail, entryId: entry.id, stream: s.stream }, 'entry moved to the dead-letter store');
    // an unauthenticated entry keeps only its size: its bytes are a forger's (or ciphertext), evidence enough in the detail
    const letter = this.letter(entry, reason, detail, null, null, reason === 'malformed' ? entry.payload : null);
    if (reason === 'unauthenticated') letter.rawBytes = entry.payload.length;
    await this.store.streamDeadLetter(s.stream, s.group, entry.id, s.dead, this.codec.encode(letter), false);
  }

  /**
   * The messages of an entry that are not queries, all in one letter (how
   * many, the reasons of the first few, the entry's bytes): a frame of a
   * million of them costs one write, and cannot push the store's other letters
   * out. The entry stays for its queries; a redelivery to this consumer does
   * not write the letter again.
   */
  private async deadLetterInvalid(entry: StreamEntry, total: number, invalid: InvalidTally): Promise<void> {
    // the entry id alone: a query's key is the entry id, a space and its queryId, so the two never meet
    const key = entry.id;
    if (this.deadLettered.has(key)) return;
    const s = this.settings;
    const { count, reasons } = invalid;
    const detail = count === 1 ? reasons[0] : `${count} of the entry's ${total} messages are not queries; the first ${reasons.length === 1 ? 'reason' : `${reasons.length} reasons`}: ${reasons.join('; ')}`;
    this.counters.deadLettered += 1;
    this.warnings.warn('dead letter malformed', { reason: 'malformed', detail, invalidMessages: count, entryId: entry.id, stream: s.stream }, 'messages of an entry moved to the dead-letter store');
    const letter = this.letter(entry, 'malformed', detail, null, null, entry.payload);
    letter.invalidMessages = count;
    await this.store.streamDeadLetter(s.stream, s.group, null, s.dead, this.codec.encode(letter), false);
    if (this.deadLettered.size > 10_000) this.deadLettered.clear();
    this.deadLettered.add(key);
  }

  private letter(entry: StreamEntry, reason: DeadLetter['reason'], detail: string, query: Query | null, lastError: ActionResult | null, raw: Buffer | null): Omit<DeadLetter, 'id'> {
    const most = this.settings.maxDeadLetterRawBytes;
    // hostile bytes must not grow Redis: keep a bounded prefix, enough to see what it was
    const kept = raw === null || raw.length <= most ? raw : raw.subarray(0, most);
    const letter: Omit<DeadLetter, 'id'> = { reason, detail, query, raw: kept, stream: this.settings.stream, entryId: entry.id, attempts: entry.deliveries, failedAt: Date.now(), lastError };
    if (raw !== null) letter.rawBytes = raw.length;
    return letter;
  }
}

/**
 * Why a well-formed envelope does not belong in this stream, or undefined: a
 * stream holds the queries of one type for one service, and a query run by
 * the wrong service or as the wrong type (a SYNC query in the FIRE_AND_FORGET
 * stream would reach its handler as SYNC, with nobody awaiting it) is malformed.
 */
function misplacedReason(query: Query, settings: QueueConsumerSettings): string | undefined {
  if (query.type !== settings.type) return `type ${JSON.stringify(query.type)} does not belong in ${settings.stream}, which holds ${settings.type} queries only`;
  if (query.serviceNameDest !== settings.service) return `serviceNameDest ${JSON.stringify(query.serviceNameDest)} is not ${JSON.stringify(settings.service)}, the service whose stream ${settings.stream} is`;
  return undefined;
}
