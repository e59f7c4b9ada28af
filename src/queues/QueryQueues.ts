import { senderOf } from '../envelope/sender';
import type { Logger } from 'pino';
import { assertName } from '../../vars/define';
import type { RedisClient } from '../client/RedisClient';
import { createQuery } from '../envelope/query';
import { unencodableReason } from '../envelope/sendable';
import { invalidQueryReason, isQueryId, MAX_QUERY_ID_LENGTH } from '../envelope/validate';
import { QueryRoute, QueryType, type Query } from '../envelope/types';
import { timerMs } from '../client/timerMs';
import { NoServiceError } from '../errors/NoServiceError';
import { PayloadTooLargeError } from '../errors/PayloadTooLargeError';
import { PermissionError } from '../errors/PermissionError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { ValidationError } from '../errors/ValidationError';
import type { QueryContext, QueryHandlers } from './QueryHandlers';
import { DEFAULT_QUERY_QUEUE_OPTIONS, type QueryQueueOptions } from './QueryQueueOptions';
import { QueueConsumer, type DeadLetter, type Delivery, type QueueConsumerStats } from './QueueConsumer';
import { describeValue } from '../../vars/describe';

/** The most dead letters one `deadLetters` call reads. */
export const MAX_DEAD_LETTERS_READ = 100_000;

/** The longest `queues.blockMs`: how long close() may wait for a consumer's blocking read to return. */
export const MAX_BLOCK_MS = 5000;

/** The consumer group every instance of a service shares for FIRE_AND_FORGET (one delivery per query). */
export const WORKERS_GROUP = 'workers';

/** Options of a durable send. */
export interface DurableSendOptions {
  /** Time allowed before the query expires undelivered (dead-lettered as `expired`), in ms; 0 for never. @default 0 */
  timeoutMs?: number;
  /** The query id, for a sender that retries and wants the retry suppressed as a duplicate. @default a new random UUID */
  queryId?: string;
}

/** What inspection reports for one destination service. */
export interface QueueInspection {
  /** The destination service whose queues these are. */
  service: string;
  /** Its FIRE_AND_FORGET queue (one delivery per query, to any instance). */
  fireAndForget: {
    /** Queries stored and not yet delivered. */
    depth: number;
    /** Delivered, not acknowledged (in progress, or held by a crashed instance). */
    pending: number;
    /** Age of the oldest query still in the queue, in ms (0 when empty). */
    oldestAgeMs: number;
  };
  /** Its BROADCAST queue (every live instance processes each query). */
  broadcast: {
    /** Entries kept (not yet processed by every live instance). */
    length: number;
    /** Per instance: queries not yet delivered (lag) and delivered but not acknowledged (pending). */
    instances: Array<{ instanceId: string; lag: number | null; pending: number }>;
  };
  /** Queries in the dead-letter store. */
  deadLetters: number;
  /** Dead letters dropped, oldest first, because the store held `queues.maxDeadLetters`. */
  deadLettersDropped: number;
}

/** Counters of this instance's consumers. */
export interface QueryQueueStats {
  /** The FIRE_AND_FORGET consumer's. */
  fireAndForget: QueueConsumerStats;
  /** The BROADCAST consumer's. */
  broadcast: QueueConsumerStats;
}

/** Why a decoded dead letter is not one (a replay would append its query): '' when it is. */
function invalidLetterReason(letter: unknown): string {
  if (typeof letter !== 'object' || letter === null || Array.isArray(letter) || Buffer.isBuffer(letter)) return 'it is not a map';
  const { reason, detail, query, stream, entryId, attempts, failedAt } = letter as Record<string, unknown>;
  for (const [field, value] of Object.entries({ reason, detail, stream, entryId })) if (typeof value !== 'string') return `its ${field} is not a string`;
  for (const [field, value] of Object.entries({ attempts, failedAt })) if (typeof value !== 'number' || !Number.isFinite(value)) return `its ${field} is not a number`;
  if (query === null) return '';
  const invalid = invalidQueryReason(query);
  return invalid === undefined ? '' : `its query is not one (${invalid})`;
}

function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** The smallest id after `id`. */
function nextId(id: string): string {
  const [ms, seq] = id.split('-').map(Number);
  return `${ms}-${seq + 1}`;
}

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am === bm ? as - bs : am - bm;
}

/**
 * FIRE_AND_FORGET and BROADCAST: durable queries on streams.
 *
 * - FIRE_AND_FORGET: one stream per destination service, read by every
 *   instance through one consumer group, so each query is processed by one
 *   instance; acknowledged and deleted only after its handler succeeded.
 * - BROADCAST: one stream per destination service, one consumer group per
 *   instance (named by its instance id), so each live instance processes each
 *   query; an instance that restarts with the same id resumes where it
 *   stopped. The stream is trimmed below what every kept group still needs;
 *   the group of an instance unseen for `broadcastRetentionMs` is removed.
 */
export class QueryQueues {
  private readonly settings: Required<QueryQueueOptions>;
  private readonly known = new Set<string>();
  /** Destinations already checked, with their two streams' keys: a send to a known one checks and builds nothing. */
  private readonly destinations = new Map<string, { queries: string; broadcast: string }>();
  private fireAndForget: QueueConsumer | undefined;
  private broadcast: QueueConsumer | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private readonly aborter = new AbortController();
  /** Settles when a reconnecting client is ready again (or closed): what waiting sends await. */
  private backOnline: Promise<'ready' | 'closed'> | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly handlers: QueryHandlers,
    options: QueryQueueOptions,
    private readonly logger: Logger,
  ) {
    const merged = { ...DEFAULT_QUERY_QUEUE_OPTIONS, ...options };
    for (const name of ['maxAttempts', 'dedupeTtlMs', 'broadcastRetentionMs', 'batchSize', 'maxDeadLetters', 'maxDeadLetterRawBytes'] as const) {
      const value = merged[name];
      if (!Number.isSafeInteger(value) || value <= 0) throw new ValidationError(`queues.${name} must be a positive integer; received ${describeValue(value)}`);
    }
    // claims are renewed every third of it, and a Node.js timer waits at most MAX_TIMER_MS
    timerMs('queues.visibilityTimeoutMs', merged.visibilityTimeoutMs, 1);
    timerMs('queues.blockMs', merged.blockMs, 1, MAX_BLOCK_MS, 'a stopping consumer waits for its read in progress, which close() must not be held by');
    for (const name of ['autoExtend', 'requireKnownDestination'] as const) {
      if (typeof merged[name] !== 'boolean') throw new ValidationError(`queues.${name} must be a boolean; received ${describeValue(merged[name])}`);
    }
    timerMs('queues.sendWaitMs', merged.sendWaitMs, 0);
    if (typeof merged.consume !== 'boolean' && merged.consume !== 'when-handled') {
      throw new ValidationError(`queues.consume must be true, false or 'when-handled'; received ${describeValue(merged.consume)}`);
    }
    this.settings = merged;
  }

  /**
   * Queries sent to one stream within one tick are appended as one entry, in
   * order; at most batchSize per entry, so that what a consumer holds at once
   * (and may process twice after a fault) stays bounded.
   */
  private append(stream: string, query: unknown): Promise<string> {
    return this.client.route.streamAppend(stream, query, this.settings.batchSize);
  }

  /**
   * Waits, at most `sendWaitMs`, for a client that is reconnecting by itself
   * to be ready again: the send is held here rather than in ioredis's offline
   * queue, so nothing is ever sent after the caller was told it failed.
   */
  private async untilReady(operation: string): Promise<void> {
    const { route } = this.client;
    if (route.status !== 'reconnecting') return;
    const waitMs = this.settings.sendWaitMs;
    // one pair of listeners for every send waiting, however many
    this.backOnline ??= new Promise<'ready' | 'closed'>((resolve) => {
      const onReady = (): void => settle('ready');
      const onClose = (): void => settle('closed');
      const settle = (how: 'ready' | 'closed'): void => {
        route.off('ready', onReady);
        route.off('close', onClose);
        this.backOnline = undefined;
        resolve(how);
      };
      route.on('ready', onReady);
      route.on('close', onClose);
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), waitMs)));
    const outcome = await Promise.race([this.backOnline, late]);
    clearTimeout(timer);
    if (outcome === 'closed') throw new NotConnectedError(operation, 'closed');
    if (outcome === 'late') throw new NotConnectedError(operation, 'reconnecting', `Redis was not back within ${waitMs} ms (queues.sendWaitMs); nothing was sent: send again after the client's 'ready' event`);
  }

  /** Whether `start()` should run at connect, before any handler is registered. */
  get startsAtConnect(): boolean {
    return this.settings.consume === true;
  }

  /** Creates this instance's consumer groups and starts consuming (unless `consume` is false). */
  async start(): Promise<void> {
    if (this.settings.consume === false) return;
    const { route, names, service, instanceId, codec } = this.client;
    const fireStream = names.queryStream(service);
    const broadcastStream = names.broadcastStream(service);
    await route.streamEnsureGroup(fireStream, WORKERS_GROUP, '0');
    // what a sender checks (requireKnownDestination): a key it may read, where the stream it may only write to is not
    await route.set(names.queueConsumed(service), '1');
    await route.set(names.broadcastSeen(service, instanceId), '1', this.settings.broadcastRetentionMs);
    await route.streamEnsureGroup(broadcastStream, instanceId, '$');
    const common = {
      dead: { stream: names.deadLetters(service), maxLength: this.settings.maxDeadLetters, droppedKey: names.deadLettersDropped(service) },
      maxDeadLetterRawBytes: this.settings.maxDeadLetterRawBytes,
      doneTtlMs: this.settings.dedupeTtlMs,
      visibilityTimeoutMs: this.settings.visibilityTimeoutMs,
      autoExtend: this.settings.autoExtend,
      maxAttempts: this.settings.maxAttempts,
      batchSize: this.settings.batchSize,
      blockMs: this.settings.blockMs,
      maxPayloadBytes: this.client.limits.maxPayloadBytes,
    };
    // one group per scope: `workers` for FIRE_AND_FORGET, the instance itself for BROADCAST
    const consumer = (stream: string, group: string, type: QueryType.FIRE_AND_FORGET | QueryType.BROADCAST): QueueConsumer =>
      new QueueConsumer(
        route,
        codec,
        route.sealer,
        { ...common, stream, service, type, group, consumer: instanceId, doneBucketKey: (bucket) => names.processed(service, group, bucket), claimsKey: names.queryClaims(service, group) },
        (delivery) => this.process(delivery),
        this.logger,
      );
    this.fireAndForget = consumer(fireStream, WORKERS_GROUP, QueryType.FIRE_AND_FORGET);
    this.broadcast = consumer(broadcastStream, instanceId, QueryType.BROADCAST);
    this.fireAndForget.start();
    this.broadcast.start();
    this.maintenance = setInterval(() => {
      this.maintain().catch((error: unknown) => this.logger.warn({ err: error }, 'queue maintenance failed; will retry'));
    }, this.maintenanceEveryMs());
    this.maintenance.unref();
  }

  /** Stops consuming; the query in progress finishes first. Durable queries stay stored. */
  async stop(): Promise<void> {
    if (this.maintenance) clearInterval(this.maintenance);
    this.aborter.abort();
    await Promise.all([this.fireAndForget?.stop(), this.broadcast?.stop()]);
  }

  /** Gives up on a stop() that Redis keeps from finishing (close() past its deadline): no timer of the consumers is left running. */
  abandon(): void {
    this.fireAndForget?.abandon();
    this.broadcast?.abandon();
  }

  /**
   * Stores a FIRE_AND_FORGET or BROADCAST query for `destination` and
   * resolves with its envelope once it is durably stored.
   */
  send(type: QueryType.FIRE_AND_FORGET | QueryType.BROADCAST, destination: string, action: number | string, query: unknown, options: DurableSendOptions = {}): Promise<Query> {
    const operation = `send a ${type} query to ${describeValue(destination)}`;
    return this.named(operation, () => this.store(operation, type, destination, action, query, options));
  }

  /**
   * Runs an operation of the API so that its NotConnectedError names it
   * (`send a FIRE_AND_FORGET query to "worker"`), never the Redis key the
   * route was reading; once the client is closing or closed, it is refused
   * at once.
   */
  private async named<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const { status } = this.client;
    if (status === 'closing' || status === 'closed') throw new NotConnectedError(operation, status);
    try {
      return await work();
    } catch (error) {
      // one that names the operation already (the wait for a reconnecting client) says more: kept
      if (!(error instanceof NotConnectedError) || error.message.startsWith(`cannot ${operation}:`)) throw error;
      const now = this.client.status;
      throw new NotConnectedError(operation, now === 'closing' || now === 'closed' ? now : 'reconnecting');
    }
  }

  private async store(operation: string, type: QueryType.FIRE_AND_FORGET | QueryType.BROADCAST, destination: string, action: number | string, query: unknown, options: DurableSendOptions): Promise<Query> {
    const streams = this.streamsOf(destination);
    if (typeof action !== 'string' && (typeof action !== 'number' || !Number.isFinite(action))) {
      throw new ValidationError(`action must be a string or a finite number; received ${describeValue(action)}`);
    }
    const timeoutMs = durableTimeoutMs(options);
    const unsendable = unencodableReason(query, 'query');
    if (unsendable !== undefined) throw new ValidationError(`cannot send a ${type} query to "${destination}": ${unsendable}`);
    const { route, service, limits } = this.client;
    // a promise turn (and the operation's name) only when Redis is away
    if (route.status === 'reconnecting') await this.untilReady(operation);
    if (this.settings.requireKnownDestination && !this.known.has(destination)) await this.assertKnown(type, destination, action);
    const envelope = createQuery({
      serviceNameSource: service,
      serviceNameDest: destination,
      type,
      action,
      query,
      timeout_ms: timeoutMs,
      route: route.kind === 'memory' ? QueryRoute.MEMORY : QueryRoute.REDIS,
      queryId: options.queryId,
    });
    const stream = type === QueryType.BROADCAST ? streams.broadcast : streams.queries;
    try {
      await this.append(stream, envelope);
    } catch (error) {
      // name the query rather than the stream
      if (error instanceof PayloadTooLargeError) throw new PayloadTooLargeError(`a ${type} query to "${destination}"`, error.size, limits.maxPayloadBytes);
      throw error;
    }
    return envelope;
  }

  /** The stream keys of a destination service, whose name is checked the first time. */
  private streamsOf(destination: unknown): { queries: string; broadcast: string } {
    const known = typeof destination === 'string' ? this.destinations.get(destination) : undefined;
    if (known !== undefined) return known;
    assertDestination(destination);
    const { names } = this.client;
    const streams = { queries: names.queryStream(destination), broadcast: names.broadcastStream(destination) };
    // bounded: a caller sending to ever new names is checked every time
    if (this.destinations.size < 1000) this.destinations.set(destination, streams);
    return streams;
  }

  /** Queue depth, pending count, age of the oldest, per-instance BROADCAST lag and dead letters of a service. */
  inspect(service: string): Promise<QueueInspection> {
    return this.named(`inspect the queues of ${describeValue(service)}`, () => this.inspectNow(service));
  }

  private async inspectNow(service: string): Promise<QueueInspection> {
    assertDestination(service);
    const { route, names } = this.client;
    const [fire, broadcast, dead, droppedBytes] = await Promise.all([
      route.streamInfo(names.queryStream(service)),
      route.streamInfo(names.broadcastStream(service)),
      route.streamInfo(names.deadLetters(service)),
      route.get(names.deadLettersDropped(service)),
    ]);
    const dropped = droppedBytes === null ? 0 : Number(droppedBytes.toString()) || 0;
    const workers = fire.groups.find((g) => g.name === WORKERS_GROUP);
    const pending = workers?.pending ?? 0;
    // processed entries stay until the periodic trim: the oldest waiting query is the oldest pending one, else the first undelivered
    let oldest = workers?.oldestPendingId ?? null;
    if (oldest === null && workers !== undefined && (workers.lag ?? 1) > 0) {
      const [next] = await route.streamRange(names.queryStream(service), nextId(workers.lastDeliveredId), '+', 1);
      oldest = next?.id ?? null;
    }
    return {
      service,
      fireAndForget: {
        depth: workers === undefined ? fire.length : (workers.lag ?? Math.max(0, fire.length - pending)),
        pending,
        oldestAgeMs: oldest === null ? 0 : Math.max(0, Date.now() - idTime(oldest)),
      },
      broadcast: { length: broadcast.length, instances: broadcast.groups.map((g) => ({ instanceId: g.name, lag: g.lag, pending: g.pending })) },
      deadLetters: dead.length,
      deadLettersDropped: dropped,
    };
  }

  /** The dead letters of a service, oldest first. */
  deadLetters(service: string, count = 100): Promise<DeadLetter[]> {
    return this.named(`read the dead letters of ${describeValue(service)}`, async () => {
      if (typeof count !== 'number' || !Number.isSafeInteger(count) || count <= 0 || count > MAX_DEAD_LETTERS_READ) {
        throw new ValidationError(`count must be an integer from 1 to ${MAX_DEAD_LETTERS_READ}; received ${describeValue(count)}`);
      }
      return this.readDeadLetters(service, count);
    });
  }

  private async readDeadLetters(service: string, count: number): Promise<DeadLetter[]> {
    assertDestination(service);
    const { route, names } = this.client;
    const stream = names.deadLetters(service);
    const entries = await route.streamRange(stream, '-', '+', count);
    return entries.map(({ id, payload }) => this.readDeadLetter(stream, id, payload));
  }

  /**
   * One dead letter as stored; a letter that does not decode, or not as a letter with a valid query (or none), is
   * returned as `unreadable` with its bytes: one such letter never fails the listing or the replay of the others.
   */
  private readDeadLetter(stream: string, id: string, payload: Buffer): DeadLetter {
    let problem: string;
    try {
      const letter = this.client.codec.decode(payload) as Omit<DeadLetter, 'id'>;
      problem = invalidLetterReason(letter);
      if (problem === '') return { ...letter, id };
    } catch (error) {
      problem = `it does not decode (${error instanceof Error ? error.message : String(error)})`;
    }
    const cap = this.settings.maxDeadLetterRawBytes;
    return {
      id,
      reason: 'unreadable',
      detail: `this dead letter cannot be read: ${problem}`,
      query: null,
      raw: payload.length > cap ? Buffer.from(payload.subarray(0, cap)) : Buffer.from(payload),
      rawBytes: payload.length,
      stream,
      entryId: id,
      attempts: 0,
      failedAt: idTime(id),
      lastError: null,
    };
  }

  /**
   * Puts dead letters back on their queue with a fresh attempt count (all of
   * them, or the given ids); resolves with how many were replayed. Entries
   * that never decoded as a query cannot be replayed and stay.
   */
  replayDeadLetters(service: string, ids?: string[], onProgress?: (done: number, total: number) => void): Promise<number> {
    return this.named(`replay the dead letters of ${describeValue(service)}`, async () => {
      if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) {
        const bad = Array.isArray(ids) ? `an array holding ${describeValue(ids.find((id) => typeof id !== 'string'))}` : describeValue(ids);
        throw new ValidationError(`ids must be an array of dead-letter ids (strings); received ${bad}`);
      }
      if (onProgress !== undefined && typeof onProgress !== 'function') throw new ValidationError(`onProgress must be a function; received ${describeValue(onProgress)}`);
      return this.replayNow(service, ids, onProgress);
    });
  }

  private async replayNow(service: string, ids: string[] | undefined, onProgress: ((done: number, total: number) => void) | undefined): Promise<number> {
    const { route, names } = this.client;
    const letters = (await this.readDeadLetters(service, 10_000)).filter((letter) => ids === undefined || ids.includes(letter.id));
    let replayed = 0;
    for (const letter of letters) {
      if (letter.query === null) continue;
      const query: Query = { ...letter.query, processAttempts: 0, query_ms: Date.now() };
      const stream = letter.query.type === QueryType.BROADCAST ? names.broadcastStream(service) : names.queryStream(service);
      await this.append(stream, query);
      await route.streamDelete(names.deadLetters(service), [letter.id]);
      replayed += 1;
      onProgress?.(replayed, letters.length);
    }
    return replayed;
  }

  /** Counters of this instance's consumers. */
  stats(): QueryQueueStats {
    const zero: QueueConsumerStats = { processed: 0, failed: 0, deadLettered: 0, duplicatesSuppressed: 0, redelivered: 0, batches: 0, claimsLost: 0, groupsRecreated: 0 };
    return { fireAndForget: { ...(this.fireAndForget?.counters ?? zero) }, broadcast: { ...(this.broadcast?.counters ?? zero) } };
  }

  /** Runs a query's handler; synchronous handlers get a synchronous answer (no promise per query). */
  private process({ query, entry, extend }: Delivery): 'done' | 'no-handler' | Promise<'done'> {
    const handler = this.handlers.get(query.action);
    if (handler === undefined) return 'no-handler';
    const context: QueryContext = {
      queryId: query.queryId,
      type: query.type,
      action: query.action,
      serviceNameSource: query.serviceNameSource,
      sender: senderOf(query, query.serviceNameSource),
      processAttempts: entry.deliveries,
      envelope: query,
      signal: this.aborter.signal,
      extend,
    };
    const outcome = handler(query.query, context);
    return outcome instanceof Promise ? outcome.then(() => 'done' as const) : 'done';
  }

  /**
   * Keeps this instance's BROADCAST group alive and, on the one instance of
   * the service that holds the maintenance lease, removes the groups of
   * long-gone instances and trims from both streams what every group has
   * processed. One instance doing it keeps a round's cost flat in the number
   * of instances (each look covers every group); the lease lapses after three
   * rounds without renewal, and another instance takes over. Two maintainers
   * for a round (a stalled holder waking) do no harm: trimming keeps what any
   * group needs, and a group is removed only when its instance is unseen.
   */
  private async maintain(): Promise<void> {
    const { route, names, service, instanceId } = this.client;
    const leaseMs = 3 * this.maintenanceEveryMs();
    const maintainer = await route.maintenanceLease(names.broadcastSeen(service, instanceId), this.settings.broadcastRetentionMs, names.queueMaintainer(service), instanceId, leaseMs);
    if (!maintainer) return;
    await Promise.all([this.trim(names.queryStream(service), false), this.trim(names.broadcastStream(service), true)]);
  }

  /** The period of maintenance rounds: a third of the retention, between 50 ms and 1 s. */
  private maintenanceEveryMs(): number {
    return Math.max(50, Math.min(1000, Math.floor(this.settings.broadcastRetentionMs / 3)));
  }

  private async trim(stream: string, perInstanceGroups: boolean): Promise<void> {
    const { route, names, service, instanceId } = this.client;
    const info = await route.streamInfo(stream);
    // the liveness marks of every other group, read at once (one round trip)
    const seen = await Promise.all(info.groups.map((group) => (perInstanceGroups && group.name !== instanceId ? route.get(names.broadcastSeen(service, group.name)) : Promise.resolve(null))));
    let minId: string | undefined;
    for (const [i, group] of info.groups.entries()) {
      if (perInstanceGroups && group.name !== instanceId && seen[i] === null) {
        this.logger.info({ instanceId: group.name }, 'removing the broadcast group of an instance gone for longer than broadcastRetentionMs');
        await route.streamDestroyGroup(stream, group.name);
        continue;
      }
      const needed = group.oldestPendingId ?? group.lastDeliveredId;
      if (minId === undefined || compareIds(needed, minId) < 0) minId = needed;
    }
    if (minId !== undefined && minId !== '0-0') await route.streamTrimBelow(stream, minId);
  }

  private async assertKnown(type: QueryType, destination: string, action: number | string): Promise<void> {
    const { route, names } = this.client;
    // the marker, else (queues created before it existed) the stream's groups, which need read access to the stream:
    // a sender that may only write it (its ACL) cannot tell, and the marker's absence decides
    const known =
      (await route.get(names.queueConsumed(destination))) !== null ||
      (await route.streamInfo(names.queryStream(destination)).then(
        (info) => info.groups.some((g) => g.name === WORKERS_GROUP),
        (error: unknown) => {
          if (error instanceof PermissionError) return false;
          throw error;
        },
      ));
    if (!known) {
      throw new NoServiceError(
        destination,
        String(action),
        'no instance of this service has ever consumed queries (set queues.requireKnownDestination: false to store them anyway)',
        `send a ${type} query to "${destination}" (action ${JSON.stringify(action)})`,
      );
    }
    this.known.add(destination);
  }
}

/**
 * The options of a durable send checked as every receiver checks the query
 * (a `queryId` it refuses would be dead-lettered as malformed, its handler
 * never run): refused here, before anything is stored. Returns `timeoutMs`.
 */
export function durableTimeoutMs(options: DurableSendOptions): number {
  const timeoutMs = options.timeoutMs ?? 0;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) throw new ValidationError(`timeoutMs must be a non-negative integer; received ${describeValue(timeoutMs)}`);
  const queryId: unknown = options.queryId;
  if (queryId !== undefined && !isQueryId(queryId)) {
    const length = typeof queryId === 'string' ? ` (${queryId.length} characters)` : '';
    throw new ValidationError(`queryId must be a non-empty string of at most ${MAX_QUERY_ID_LENGTH} characters, as receivers require; received ${describeValue(queryId)}${length}`);
  }
  return timeoutMs;
}

function assertDestination(destination: unknown): asserts destination is string {
  try {
    assertName('destination service', destination);
  } catch (error) {
    throw new ValidationError((error as Error).message);
  }
}

