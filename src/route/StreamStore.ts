/**
 * Durable queues: the Redis Streams operations (XADD, XREADGROUP, XPENDING with
 * XCLAIM, XACK, ...) that FIRE_AND_FORGET and BROADCAST are built on, as a contract
 * that the memory route implements too. Entries carry opaque bytes: the layer
 * above encodes and validates them, so a malformed entry can be dead-lettered
 * instead of blocking the queue.
 */

/** One entry of a stream, as delivered to a consumer. */
export interface StreamEntry {
  /** Stream id (`<ms>-<seq>`); ids increase with time. */
  id: string;
  /** The bytes appended. */
  payload: Buffer;
  /** How many times the entry has been delivered in its group, this delivery included (1 on the first). */
  deliveries: number;
}

/** A consumer group, as inspection sees it. */
export interface StreamGroupInfo {
  /** The group's name (`workers`, or a BROADCAST instance's id). */
  name: string;
  /** Delivered and not acknowledged. */
  pending: number;
  /** Entries not yet delivered to the group (null when Redis cannot tell). */
  lag: number | null;
  /** Id of the last entry delivered to the group. */
  lastDeliveredId: string;
  /** Id of the oldest pending entry, when any. */
  oldestPendingId: string | null;
}

/** A stream, as inspection sees it. */
export interface StreamInfo {
  /** Entries in the stream (undelivered, pending, and for BROADCAST delivered but not yet trimmed). */
  length: number;
  /** Id of the oldest entry, when any. */
  firstId: string | null;
  /** Its consumer groups. */
  groups: StreamGroupInfo[];
}

/**
 * Completion records: a set of ids (query ids) per key, the key living
 * `ttlMs` from its last write. Keys are time buckets, so a record lives
 * between one and two bucket lengths without a key per query.
 */
export interface DoneRecords {
  /** The bucket's key. */
  key: string;
  /** The query ids completed. */
  ids: string[];
  /** How long the key lives from this write, in ms. */
  ttlMs: number;
}

/** Where dead letters go, and how many are kept. */
export interface DeadLetterStore {
  /** The dead-letter stream. */
  stream: string;
  /** Entries kept at most; the oldest beyond it are dropped (XTRIM MAXLEN) in the same step. */
  maxLength: number;
  /** A counter key that the number of dropped letters is added to. */
  droppedKey: string;
}

/** What to do with entries once processed. */
export interface AckOptions {
  /** Delete the entries from the stream too. */
  delete: boolean;
  /** Record these completions in the same atomic step, for duplicate suppression. */
  done?: DoneRecords;
  /** Claims to delete in the same step (those of the completions recorded). */
  releaseClaims?: { key: string; queryIds: string[] };
}

/** The queries of one entry that a consumer wants to process. */
export interface EntryQueries {
  /** The stream entry. */
  entryId: string;
  /** The ids of its queries to claim. */
  queryIds: string[];
}

/**
 * What {@link StreamStore.claimQueries} found for one query:
 * - `claimed`: it is now held by the claimer (or still was, from the same entry);
 * - `done`: a completion record exists;
 * - `held-elsewhere`: a live claim holds it from another entry (or it came twice in this call): this copy is a duplicate;
 * - `held-here`: another consumer holds it from this same entry (the entry was taken while it ran).
 */
export type ClaimState = 'claimed' | 'done' | 'held-elsewhere' | 'held-here';

/**
 * One step of a consumer under load (see {@link StreamStore.consumeStep}):
 * what it processed, what it read before, and how much to read next.
 */
export interface ConsumeStep {
  /** The stream read. */
  stream: string;
  /** The consumer group. */
  group: string;
  /** The consumer, and the holder of the claims it takes. */
  consumer: string;
  /** Completion records of the current time bucket (written and checked) and of the one before (checked). */
  doneKeys: [current: string, previous: string];
  /** How long the current bucket's key lives from this write, in ms. */
  doneTtlMs: number;
  /** The claims of the group (a hash by query id). */
  claimsKey: string;
  /** How long a claim taken lives, in ms. */
  claimTtlMs: number;
  /** Entries to acknowledge (every query of theirs completed, dead-lettered or a duplicate). */
  ack: string[];
  /** Queries completed: recorded under the current bucket, their claims deleted. */
  completed: string[];
  /** Queries to claim, as {@link StreamStore.claimQueries} does. */
  claim: EntryQueries[];
  /** New entries to read at most (0: none); the step never blocks. */
  read: number;
}

/** What a {@link ConsumeStep} found. */
export interface ConsumeStepResult {
  /** Per query of `claim`, in order. */
  states: ClaimState[];
  /** The entries read (`'>'`, first delivery). */
  entries: StreamEntry[];
  /** The group was gone (NOGROUP) when the entries were to be read: nothing was read; the records and claims were written all the same. */
  groupGone: boolean;
}

/** Which of the entries and claims a renewal still found held by the renewing consumer. */
export interface RenewResult {
  /** Per entry asked for, in order: whether it was still pending for this consumer (and its idle time was reset). */
  entries: boolean[];
  /** Per query claim asked for, in order: whether this consumer still held it (and its lifetime was extended). */
  claims: boolean[];
  /** The group was gone (NOGROUP) when the entries were renewed: the claims were renewed all the same. */
  groupGone: boolean;
}

/** The durable-queue operations a route offers. */
export interface StreamStore {
  /** Appends an entry; resolves once Redis (or the memory route) stored it, with its id. */
  streamAdd(stream: string, payload: Buffer): Promise<string>;
  /** Creates a consumer group reading from the start (`0`) or only new entries (`$`), and the stream if needed. Resolves false when it existed. */
  streamEnsureGroup(stream: string, group: string, from: '0' | '$'): Promise<boolean>;
  /** Removes a consumer group and its pending entries list. */
  streamDestroyGroup(stream: string, group: string): Promise<void>;
  /**
   * Delivers up to `count` entries to `consumer`: new ones (`'>'`), waiting
   * up to `blockMs` when there are none, or with `'own-pending'` the
   * entries already delivered to this consumer and not acknowledged (after a
   * restart), which does not block.
   */
  streamRead(stream: string, group: string, consumer: string, which: '>' | 'own-pending', count: number, blockMs: number): Promise<StreamEntry[]>;
  /** Transfers to `consumer` entries pending for at least `minIdleMs` (their holder is presumed dead), counting a delivery. */
  streamClaimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]>;
  /** Acknowledges entries (and deletes them, and records their completion, in one atomic step, as asked). */
  streamAck(stream: string, group: string, ids: string[], options: AckOptions): Promise<void>;
  /**
   * Atomically appends `payload` to the dead-letter stream (dropping and
   * counting its oldest entries beyond `dead.maxLength`) and, when `id` is
   * given, acknowledges (and deletes, as asked) that entry.
   */
  streamDeadLetter(stream: string, group: string, id: string | null, dead: DeadLetterStore, payload: Buffer, remove: boolean): Promise<string>;
  /** Entries between two ids (inclusive; `-` and `+` for the ends). */
  streamRange(stream: string, start: string, end: string, count: number): Promise<Array<{ id: string; payload: Buffer }>>;
  /** Deletes entries; resolves with how many existed. */
  streamDelete(stream: string, ids: string[]): Promise<number>;
  /** Deletes every entry with an id lower than `minId`. */
  streamTrimBelow(stream: string, minId: string): Promise<number>;
  /** Length, groups, pending and lag. */
  streamInfo(stream: string): Promise<StreamInfo>;
  /**
   * Per-query claims, one atomic step for the whole list (answers in the
   * order of the queries, entry after entry): a query with a completion
   * record under `doneKeys` is `done`; one that `claimsKey` (a hash by query
   * id) holds a live claim for is `held-elsewhere` or `held-here`; otherwise
   * it is claimed for `holder`, from its entry, for `ttlMs`.
   */
  claimQueries(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): Promise<ClaimState[]>;
  /**
   * A consumer's round trip under load, as one atomic step: acknowledges
   * `ack` and records `completed` (deleting their claims), as
   * {@link streamAck} with `done` and `releaseClaims`; then claims `claim`'s
   * queries, as {@link claimQueries}; then reads up to `read` new entries
   * for `consumer` without blocking.
   */
  consumeStep(step: ConsumeStep): Promise<ConsumeStepResult>;
  /**
   * Renews, for `holder` only, pending entries of `group` (their idle time
   * goes back to 0, no delivery counted) and claims of `claimsKey` (they
   * live `ttlMs` again); answers which were still held. An entry that
   * `holder` still has a claim from is held even when the group lost it (the
   * group is gone, or was recreated and delivered it to another consumer,
   * from whom it is taken back without counting a delivery). A group that is
   * gone does not fail the renewal: `groupGone` says so.
   */
  renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimsKey: string, queryIds: string[], ttlMs: number): Promise<RenewResult>;
  /** Deletes the claims that `holder` still holds (a failed query, to be retried from its entry). */
  releaseClaims(claimsKey: string, queryIds: string[], holder: string): Promise<void>;
  /**
   * One maintenance round's liveness mark and lease, in one step: sets
   * `seenKey` for `seenTtlMs`, then takes `leaseKey` for `holder` for
   * `leaseMs` when it is free, or renews it when `holder` has it; true when
   * `holder` holds the lease afterwards.
   */
  maintenanceLease(seenKey: string, seenTtlMs: number, leaseKey: string, holder: string, leaseMs: number): Promise<boolean>;
}
