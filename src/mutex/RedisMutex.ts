import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import Redis, { ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { Names } from '../../vars/names';
import { RedisClient } from '../client/RedisClient';
import { AcquireAbortedError } from '../errors/AcquireAbortedError';
import { AcquireTimeoutError } from '../errors/AcquireTimeoutError';
import { IntracomError } from '../errors/IntracomError';
import { LockLostError } from '../errors/LockLostError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { ValidationError } from '../errors/ValidationError';
import { MutexLock, type LockBackend } from './MutexLock';
import { assertMutexId, assertNodeId, assertTimeout, decodeValue, describe, encodeValue, freeRecord, type MutexRecord } from './record';
import { DEFAULT_MUTEX_OPTIONS, type AcquireOptions, type RedisMutexOptions } from './RedisMutexOptions';
import { ShortIds } from '../envelope/ids';
import { defaultLogger } from '../log/logger';
import type { LockStore } from '../route/LockStore';
import { RedisLockStore } from '../route/RedisLockStore';
import type { Route } from '../route/Route';

/** The critical section run by {@link RedisMutex.withMutex}. */
export type CriticalSection<T> = (signal: AbortSignal, lock: MutexLock) => T | Promise<T>;

/** How often the sweep runs at most, in ms: the precision of command deadlines, and of lease expiry for locks without a signal or refresh. */
const SWEEP_MAX_MS = 25;

interface InflightCommand {
  deadline: number;
  settled: boolean;
  reject: (error: unknown) => void;
  operation: string;
  mutexId: string | undefined;
}

interface ResolvedAcquire {
  nodeId: string;
  timeoutMs: number;
  waitMs: number;
  retryDelayMs: number;
  retryJitterMs: number;
  signal: AbortSignal | undefined;
  autoRefresh: boolean;
}

/**
 * The shared mutex of seeds/001 on Redis `SET NX PX`: a lock that only one
 * node holds at a time, released by its holder (`V`) or by Redis after its
 * timeout.
 *
 * - `P(mutexId, nodeId, timeoutMs)` tries once and answers true when taken;
 *   `V(mutexId)` releases only if this RedisMutex still holds it (the owner
 *   token is compared and deleted in one Lua script).
 * - `acquire` waits (deadline, retry with jitter, AbortSignal), and returns a
 *   {@link MutexLock} with a fencing token; `withMutex` runs a function under
 *   the lock, refreshes it, hands the function a signal that fires if the lock
 *   is lost, and releases it in every case.
 * - `inspect` and `list` read the seed's record.
 * - When Redis cannot be reached the calls reject with RedisUnavailableError:
 *   never a guessed "taken" or "free".
 *
 * Events: `lost` (LockLostError) when a held lock is found lost; also logged.
 *
 * @example
 * const mutex = new RedisMutex({ redis: 'redis://127.0.0.1:6379' });
 * if (await mutex.P('users-schema-init', 'node-1', 30_000)) {
 *   try { await initSchema(); } finally { await mutex.V('users-schema-init'); }
 * }
 * await mutex.withMutex('nightly-report', async (signal, lock) => {
 *   await buildReport({ signal, fence: lock.fence });
 * });
 * await mutex.close();
 */
export class RedisMutex extends EventEmitter implements LockBackend {
  /** Key names of this deployment. */
  readonly names: Names;
  /** Default node id of `acquire`, `tryAcquire` and `withMutex`. */
  readonly nodeId: string;
  /** The mutex's logger (`module: 'mutex'`). */
  readonly logger: Logger;
  /** The connection, when the mutexes live in Redis (none on the memory route). */
  private readonly redis: Redis | undefined;
  private readonly store: LockStore;
  /** The route of the RedisClient given as `redis`, connected on first use if it is not yet. */
  private readonly route: Route | undefined;
  private readonly ownsConnection: boolean;
  private readonly commandTimeoutMs: number;
  private readonly defaultTimeoutMs: number;
  private readonly waitMs: number;
  private readonly retryDelayMs: number;
  private readonly retryJitterMs: number;
  private readonly refreshRatio: number;
  private readonly locks = new Map<string, MutexLock>();
  private readonly lockKeys = new Map<string, string>();
  private lastNodeId: string | undefined;
  // Unique per acquisition: 72 random bits per RedisMutex, then a counter. Short, so that a lock value
  // with a short nodeId stays within Redis's 44-byte embedded strings.
  private readonly tokens = new ShortIds(9);
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;
  private outageReported = false;
  /** Calls awaiting a reply, oldest first; settled ones are dropped by the sweep. */
  private inflight: InflightCommand[] = [];
  private readonly sweepMs: number;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: RedisMutexOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describe(options)}`);
    const redis: unknown = options.redis;
    let namespace = options.namespace;
    let defaultNodeId = `${hostname()}:${process.pid}`;
    if (redis instanceof RedisClient) {
      // the client's route keeps the locks: Redis, or the memory bus its instances share as they would share Redis
      this.redis = undefined;
      this.route = redis.route;
      this.store = redis.route.locks;
      this.ownsConnection = false;
      namespace ??= redis.names.namespace;
      defaultNodeId = `${redis.service}:${redis.instanceId}`;
    } else if (redis instanceof Redis) {
      this.redis = redis;
      this.ownsConnection = false;
    } else if (typeof redis === 'string' || (typeof redis === 'object' && redis !== null && !Array.isArray(redis))) {
      // Created here, so made to fail fast: with no offline queue and no retry of a command in
      // flight, a call made while Redis is unreachable rejects at once instead of waiting for
      // a reconnection, and nothing is sent later on behalf of a caller who was told it failed.
      const failFast = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 };
      this.redis = typeof redis === 'string' ? new Redis(redis, failFast) : new Redis({ ...failFast, ...redis, lazyConnect: true });
      this.ownsConnection = true;
    } else {
      throw new ValidationError(`redis must be a URL, ioredis options, an ioredis instance or a RedisClient; received ${describe(redis)}`);
    }
    this.store ??= new RedisLockStore(this.redis as Redis);
    namespace ??= DEFAULT_MUTEX_OPTIONS.namespace;
    try {
      this.names = new Names(namespace);
    } catch (error) {
      throw new ValidationError((error as Error).message);
    }
    this.nodeId = options.nodeId ?? defaultNodeId;
    assertNodeId(this.nodeId, 'nodeId');
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_MUTEX_OPTIONS.commandTimeoutMs;
    assertTimeout(this.commandTimeoutMs, 'commandTimeoutMs');
    this.sweepMs = Math.min(SWEEP_MAX_MS, Math.max(1, Math.floor(this.commandTimeoutMs / 10)));
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_MUTEX_OPTIONS.defaultTimeoutMs;
    assertTimeout(this.defaultTimeoutMs, 'defaultTimeoutMs');
    this.waitMs = waitOption('waitMs', options.waitMs ?? DEFAULT_MUTEX_OPTIONS.waitMs);
    this.retryDelayMs = delayOption('retryDelayMs', options.retryDelayMs ?? DEFAULT_MUTEX_OPTIONS.retryDelayMs);
    this.retryJitterMs = delayOption('retryJitterMs', options.retryJitterMs ?? DEFAULT_MUTEX_OPTIONS.retryJitterMs);
    this.refreshRatio = options.refreshRatio ?? DEFAULT_MUTEX_OPTIONS.refreshRatio;
    if (typeof this.refreshRatio !== 'number' || !(this.refreshRatio >= 0.05 && this.refreshRatio <= 0.9)) {
      throw new ValidationError(`refreshRatio must be a number from 0.05 to 0.9; received ${describe(options.refreshRatio)}`);
    }
    if (options.logger !== undefined && typeof options.logger?.child !== 'function') {
      throw new ValidationError(`logger must be a pino logger; received ${describe(options.logger)}`);
    }
    // on a client's connection the mutex logs as a module of that instance (service and instance bound once)
    this.logger =
      options.logger === undefined && redis instanceof RedisClient ? redis.moduleLogger('mutex') : (options.logger ?? defaultLogger()).child({ module: 'mutex', nodeId: this.nodeId });
    if (this.ownsConnection && this.redis !== undefined) {
      this.redis.on('error', (error: Error) => {
        if (this.outageReported) return;
        this.outageReported = true;
        this.logger.warn({ err: error }, 'redis connection error; mutex calls fail until it is back');
      });
      this.redis.on('ready', () => {
        this.outageReported = false;
      });
    }
  }

  // ---- the seed's API ----

  /**
   * Tries once to take `mutexId` for `timeoutMs` ms, recording `nodeId` as
   * its holder. Resolves true when taken (Redis releases it by itself after
   * `timeoutMs` unless `V` or `extend` comes first), false when another
   * holder has it. Not re-entrant: false also when this RedisMutex holds it.
   * Rejects with ValidationError on a bad argument and RedisUnavailableError
   * when Redis does not answer.
   */
  P(mutexId: string, nodeId: string, timeoutMs: number): Promise<boolean> {
    // Not async, and the key cached per id: the seed's API is the fast path, one SET NX PX, no script, no fence.
    let key: string;
    try {
      key = this.lockKey(mutexId);
      if (nodeId !== this.lastNodeId) {
        assertNodeId(nodeId);
        this.lastNodeId = nodeId; // a service passes the same node id again and again
      }
      assertTimeout(timeoutMs);
      this.assertOpen('P');
    } catch (error) {
      return Promise.reject(error);
    }
    const sentAt = Date.now();
    const value = encodeValue(this.nextToken(), null, sentAt, timeoutMs, nodeId);
    return this.command(
      'P',
      mutexId,
      (store) => store.setIfAbsent(key, value, timeoutMs),
      (late) => late && this.releaseLate(key, value, 'P', mutexId),
      (taken): boolean | Promise<never> => {
        if (!taken) return false;
        const closed = this.register(new MutexLock(this, { mutexId, key, nodeId, fence: null, value, takenAt: sentAt, timeoutMs, sentAt }), 'P');
        return closed ?? true;
      },
    ) as Promise<boolean>;
  }

  /**
   * Releases `mutexId` if this RedisMutex holds it and Redis still has its
   * token (compare and delete in one Lua script). Resolves true when released
   * by this call, false when this RedisMutex did not hold it or it had
   * expired or been taken over (another holder's lock is never touched).
   */
  V(mutexId: string): Promise<boolean> {
    // Not async, one promise less on the fast path; bad input still rejects rather than throws.
    const lock = this.locks.get(mutexId); // a lock found proves the id valid
    try {
      if (lock === undefined) this.lockKey(mutexId);
      this.assertOpen('V');
    } catch (error) {
      return Promise.reject(error);
    }
    return lock === undefined ? Promise.resolve(false) : this.releaseLock(lock);
  }

  // ---- beyond the seed ----

  /**
   * Tries once, like `P`, and returns the {@link MutexLock} (with its fencing
   * token) when taken, null when another holder has it.
   */
  async tryAcquire(mutexId: string, options: AcquireOptions = {}): Promise<MutexLock | null> {
    assertMutexId(mutexId);
    const settings = this.acquireSettings(options, false);
    this.assertOpen('tryAcquire');
    const lock = await this.take(mutexId, settings.nodeId, settings.timeoutMs, 'tryAcquire');
    if (typeof lock === 'number') return null;
    if (settings.autoRefresh) lock.startRefresh(this.refreshRatio);
    return lock;
  }

  /**
   * Takes `mutexId`, waiting while another node holds it: retries every
   * `retryDelayMs` plus up to `retryJitterMs` (sooner when the holder's lease
   * ends first) until `waitMs` has passed. Resolves with the
   * {@link MutexLock}; rejects with AcquireTimeoutError when the wait ran out,
   * AcquireAbortedError when `signal` fired, RedisUnavailableError when Redis
   * does not answer (at once: it does not retry through an outage).
   */
  async acquire(mutexId: string, options: AcquireOptions = {}): Promise<MutexLock> {
    assertMutexId(mutexId);
    const settings = this.acquireSettings(options, false);
    this.assertOpen('acquire');
    return this.acquireWith(mutexId, settings, 'acquire');
  }

  /**
   * Runs `fn` while holding `mutexId` and releases it afterwards in every
   * case (`fn` resolved, threw, or the lock was lost). Waits for the mutex
   * like `acquire`, and refreshes it automatically unless `autoRefresh` is
   * false. `fn` gets an AbortSignal that fires (reason: LockLostError) when
   * the lock is lost, and the lock itself (its `fence`, `assertHeld()`).
   *
   * Resolves with `fn`'s result. Rejects with `fn`'s error when it throws;
   * with LockLostError when the lock was lost while `fn` ran, even if `fn`
   * then resolved (its work was not protected throughout); and with the
   * errors of `acquire`. A failed release is logged, not thrown: Redis frees
   * the lock at its timeout.
   */
  async withMutex<T>(mutexId: string, fn: CriticalSection<T>, options: AcquireOptions = {}): Promise<T> {
    assertMutexId(mutexId);
    if (typeof fn !== 'function') throw new ValidationError(`fn must be a function; received ${describe(fn)}`);
    const settings = this.acquireSettings(options, true);
    this.assertOpen('withMutex');
    const lock = await this.acquireWith(mutexId, settings, 'withMutex');
    let result: T;
    try {
      result = await fn(lock.signal, lock);
      if (!lock.lost && !lock.held) lock.markLost('its timeout passed while the critical section ran, with no confirmed extension (was the event loop blocked?)');
    } catch (error) {
      await this.releaseQuietly(lock);
      throw error;
    }
    await this.releaseQuietly(lock);
    const lost = lock.lossError;
    if (lost) throw lost;
    return result;
  }

  /**
   * Gives the lock this RedisMutex holds on `mutexId` a new lease of
   * `timeoutMs` (default: its current one) from now. Resolves true when
   * extended, false when it is not held (never taken here, released,
   * expired or taken over; an expired lock is never re-created).
   */
  async extend(mutexId: string, timeoutMs?: number): Promise<boolean> {
    assertMutexId(mutexId);
    if (timeoutMs !== undefined) assertTimeout(timeoutMs);
    this.assertOpen('extend');
    const lock = this.locks.get(mutexId);
    if (lock === undefined) return false;
    try {
      await lock.extend(timeoutMs);
      return true;
    } catch (error) {
      if (error instanceof LockLostError) return false;
      throw error;
    }
  }

  /** The {@link MutexLock} this RedisMutex holds (or held until it was lost) on `mutexId`, for a lock taken with `P`. */
  heldLock(mutexId: string): MutexLock | undefined {
    assertMutexId(mutexId);
    return this.locks.get(mutexId);
  }

  /** The seed's record of one mutex, read from Redis (taken or free). */
  async inspect(mutexId: string): Promise<MutexRecord> {
    assertMutexId(mutexId);
    this.assertOpen('inspect');
    const key = this.names.mutex(mutexId);
    const reply = await this.command('inspect', mutexId, (store) => store.read(key));
    return reply ? decodeValue(mutexId, reply[0], reply[1]) : freeRecord(mutexId);
  }

  /** The records of every mutex held in this namespace, by `mutexId` (SCAN, so it does not block Redis). */
  async list(): Promise<MutexRecord[]> {
    this.assertOpen('list');
    const [head, tail] = this.names.mutex('\u0000').split('\u0000');
    const keys = await this.command('list', undefined, (store) => store.keys(this.names.mutexScanPattern()));
    const records = await Promise.all(
      keys.map(async (key) => {
        const mutexId = key.slice(head.length, key.length - tail.length);
        const reply = await this.command('list', mutexId, (store) => store.read(key));
        return reply ? decodeValue(mutexId, reply[0], reply[1]) : undefined;
      }),
    );
    return records.filter((r): r is MutexRecord => r !== undefined).sort((a, b) => (a.mutexId < b.mutexId ? -1 : a.mutexId > b.mutexId ? 1 : 0));
  }

  /**
   * Releases every mutex this RedisMutex holds (their signals fire: a
   * critical section still running is no longer protected), stops refreshing,
   * and closes the connection if it was created here. Later calls reject
   * with NotConnectedError.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.connecting?.catch(() => undefined);
      const held = [...this.locks.values()];
      await Promise.all(
        held.map(async (lock) => {
          lock.markLost('RedisMutex.close() released it', false);
          try {
            await this.releaseLock(lock);
          } catch (error) {
            this.logger.warn({ err: error, mutexId: lock.mutexId }, 'could not release a mutex on close; Redis frees it at its timeout');
          }
        }),
      );
      this.closed = true;
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      if (this.ownsConnection && this.redis !== undefined) {
        if (this.redis.status === 'ready') {
          try {
            await this.redis.quit();
          } catch {
            // already gone: what we want
          }
        }
        this.redis.disconnect();
      }
    })();
    return this.closing;
  }

  // ---- LockBackend (used by MutexLock) ----

  /** @internal */
  async extendLock(lock: MutexLock, timeoutMs: number): Promise<boolean> {
    assertTimeout(timeoutMs);
    return this.command('extend', lock.mutexId, (store) => store.extendIfHeld(lock.key, lock.value, timeoutMs));
  }

  /** @internal */
  releaseLock(lock: MutexLock): Promise<boolean> {
    if (!lock.claimRelease()) return Promise.resolve(false);
    if (this.locks.get(lock.mutexId) === lock) this.locks.delete(lock.mutexId);
    return this.command('V', lock.mutexId, (store) => store.releaseIfHeld(lock.key, lock.value));
  }

  /** @internal */
  reportLost(lock: MutexLock, error: LockLostError): void {
    this.logger.warn({ mutexId: lock.mutexId, fence: lock.fence, reason: error.message }, 'mutex lost');
    if (this.listenerCount('lost') > 0) this.emit('lost', error);
  }

  /** @internal */
  reportRefreshFailure(lock: MutexLock, error: unknown): void {
    this.logger.warn({ err: error, mutexId: lock.mutexId, expiresAt: lock.expiresAt }, 'could not extend a mutex; retrying until its timeout');
  }

  // ---- internals ----

  private async acquireWith(mutexId: string, settings: ResolvedAcquire, operation: string): Promise<MutexLock> {
    const { signal } = settings;
    const deadline = Date.now() + settings.waitMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw new AcquireAbortedError(mutexId, signal.reason);
      const outcome = await this.take(mutexId, settings.nodeId, settings.timeoutMs, operation);
      if (typeof outcome !== 'number') {
        if (signal?.aborted) {
          await this.releaseQuietly(outcome);
          throw new AcquireAbortedError(mutexId, signal.reason);
        }
        if (settings.autoRefresh) outcome.startRefresh(this.refreshRatio);
        return outcome;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new AcquireTimeoutError(mutexId, settings.waitMs, attempt);
      let delay = settings.retryDelayMs + Math.random() * settings.retryJitterMs;
      if (outcome > 0) delay = Math.min(delay, outcome + 1);
      await pause(Math.max(1, Math.min(delay, remaining)), signal, mutexId);
    }
  }

  /** One fenced attempt (the acquire script): the new lock, or the holder's remaining ms (-1 when unknown). */
  private async take(mutexId: string, nodeId: string, timeoutMs: number, operation: string): Promise<MutexLock | number> {
    const key = this.lockKey(mutexId);
    const token = this.nextToken();
    const sentAt = Date.now();
    const [taken, reply] = await this.command(
      operation,
      mutexId,
      (store) => store.takeFenced(key, this.names.mutexFence(mutexId), token, sentAt, timeoutMs, nodeId),
      (late) => late[0] === 1 && this.releaseLate(key, encodeValue(token, Number(late[1]), sentAt, timeoutMs, nodeId), operation, mutexId),
    );
    if (taken !== 1) return Number(reply);
    const fence = Number(reply);
    const value = encodeValue(token, fence, sentAt, timeoutMs, nodeId); // the value the script stored
    const lock = new MutexLock(this, { mutexId, key, nodeId, fence, value, takenAt: sentAt, timeoutMs, sentAt });
    const closed = this.register(lock, operation);
    if (closed) await closed;
    return lock;
  }

  /** Records a lock just taken; a stale one for the same id (expired unnoticed) is marked lost. */
  private register(lock: MutexLock, operation: string): Promise<never> | undefined {
    const previous = this.locks.get(lock.mutexId);
    if (previous !== undefined && !previous.lost) previous.markLost('it expired, and this RedisMutex has taken the mutex again');
    this.locks.set(lock.mutexId, lock);
    this.startSweep();
    if (!this.closing) return undefined;
    // close() began while this attempt was in flight: hand nothing out.
    return this.releaseQuietly(lock).then(() => {
      throw new NotConnectedError(label(operation, lock.mutexId), 'closed');
    });
  }

  /** Validates a mutex id and returns its lock key, cached: ids repeat, and P/V is the fast path. */
  private lockKey(mutexId: string): string {
    const cached = this.lockKeys.get(mutexId);
    if (cached !== undefined) return cached;
    assertMutexId(mutexId);
    if (this.lockKeys.size >= 1024) this.lockKeys.clear();
    const key = this.names.mutex(mutexId);
    this.lockKeys.set(mutexId, key);
    return key;
  }

  private nextToken(): string {
    return this.tokens.next();
  }

  /** A lock taken by a reply that came after the caller was told "unavailable": nobody owns it, so give it back. */
  private releaseLate(key: string, value: string, operation: string, mutexId: string): void {
    const what = label(operation, mutexId);
    this.logger.warn({ operation: what }, 'a late reply took a mutex after the call had failed; releasing it');
    this.store.releaseIfHeld(key, value).catch((error: unknown) => {
      this.logger.warn({ err: error, operation: what }, 'could not release a mutex taken by a late reply; Redis frees it at its timeout');
    });
  }

  private async releaseQuietly(lock: MutexLock): Promise<void> {
    try {
      await this.releaseLock(lock);
    } catch (error) {
      this.logger.warn({ err: error, mutexId: lock.mutexId }, 'could not release a mutex; Redis frees it at its timeout');
    }
  }

  /**
   * Runs one Redis command under the command deadline, turning connection
   * failures into RedisUnavailableError. Not async, and labels built only on
   * failure: this is the P/V fast path.
   */
  private command<T, R = T>(
    operation: string,
    mutexId: string | undefined,
    run: (store: LockStore) => Promise<T>,
    onLate?: (value: T) => unknown,
    /** What the call resolves with, computed in the same step as the reply is taken (no promise layer of its own). */
    finish?: (value: T) => R | Promise<R>,
  ): Promise<R> {
    if (this.closed) return Promise.reject(new NotConnectedError(label(operation, mutexId), 'closed'));
    if (this.connecting || (this.redis !== undefined ? this.redis.status === 'wait' : this.route?.status === 'idle')) {
      // First use: connect, and let every call made meanwhile wait for that connection.
      return this.connectFirst(label(operation, mutexId)).then(() => this.command(operation, mutexId, run, onLate, finish));
    }
    let pending: Promise<T>;
    try {
      pending = run(this.store);
    } catch (error) {
      return Promise.reject(this.failure(label(operation, mutexId), error));
    }
    return new Promise<R>((resolve, reject) => {
      // The deadline is enforced by the sweep (one interval for every call), not by a timer per call.
      const call: InflightCommand = { deadline: Date.now() + this.commandTimeoutMs, settled: false, reject, operation, mutexId };
      this.inflight.push(call);
      if (this.sweepTimer === undefined) this.startSweep();
      pending.then(
        (value) => {
          if (this.inflight[0] === call) this.inflight.shift(); // replies come in order: usually the oldest
          if (call.settled) {
            onLate?.(value);
            return;
          }
          call.settled = true;
          if (finish === undefined) return resolve(value as unknown as R);
          try {
            resolve(finish(value));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          if (this.inflight[0] === call) this.inflight.shift();
          if (call.settled) return;
          call.settled = true;
          reject(this.failure(label(operation, mutexId), error));
        },
      );
    });
  }

  /**
   * One interval per RedisMutex, running while a command is in flight or a
   * lock is held: fails calls past their deadline and finds leases that ran
   * out. Cheaper than a timer per call, which matters on the P/V fast path.
   */
  private startSweep(): void {
    if (this.sweepTimer || this.closed) return;
    this.sweepTimer = setInterval(() => this.sweep(), this.sweepMs);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = Date.now();
    const waiting: InflightCommand[] = [];
    for (const call of this.inflight) {
      if (call.settled) continue;
      if (now < call.deadline) {
        waiting.push(call);
        continue;
      }
      call.settled = true;
      call.reject(new RedisUnavailableError(label(call.operation, call.mutexId), `no reply within ${this.commandTimeoutMs} ms (commandTimeoutMs)`));
    }
    this.inflight = waiting;
    for (const lock of this.locks.values()) lock.checkLease(now);
    if ((waiting.length === 0 && this.locks.size === 0) || this.closed) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  private async connectFirst(operation: string): Promise<void> {
    this.connecting ??= (this.redis !== undefined ? this.redis.connect() : (this.route as Route).connect()).finally(() => {
      this.connecting = undefined;
    });
    const connecting = this.connecting;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new RedisUnavailableError(operation, `could not connect within ${this.commandTimeoutMs} ms (commandTimeoutMs)`)), this.commandTimeoutMs);
          timer.unref();
        }),
      ]);
    } catch (error) {
      throw this.failure(operation, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private failure(operation: string, error: unknown): Error {
    if (error instanceof IntracomError) return error;
    if (error instanceof ReplyError) return error as Error; // Redis answered, with an error: not an outage
    return new RedisUnavailableError(operation, error instanceof Error ? error.message : String(error), { cause: error });
  }

  private assertOpen(operation: string): void {
    if (this.closing) throw new NotConnectedError(operation, 'closed');
  }

  private acquireSettings(options: AcquireOptions, withMutex: boolean): ResolvedAcquire {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describe(options)}`);
    const nodeId = options.nodeId ?? this.nodeId;
    assertNodeId(nodeId, 'nodeId option');
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    assertTimeout(timeoutMs, 'timeoutMs option');
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError(`signal option must be an AbortSignal; received ${describe(signal)}`);
    const autoRefresh = options.autoRefresh ?? withMutex;
    if (typeof autoRefresh !== 'boolean') throw new ValidationError(`autoRefresh option must be a boolean; received ${describe(autoRefresh)}`);
    return {
      nodeId,
      timeoutMs,
      waitMs: waitOption('waitMs option', options.waitMs ?? this.waitMs),
      retryDelayMs: delayOption('retryDelayMs option', options.retryDelayMs ?? this.retryDelayMs),
      retryJitterMs: delayOption('retryJitterMs option', options.retryJitterMs ?? this.retryJitterMs),
      signal,
      autoRefresh,
    };
  }
}

function label(operation: string, mutexId: string | undefined): string {
  return mutexId === undefined ? operation : `${operation} "${mutexId}"`;
}


function waitOption(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new ValidationError(`${name} must be a number of milliseconds >= 0, or Infinity; received ${describe(value)}`);
  }
  return value;
}

function delayOption(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`${name} must be a finite number of milliseconds >= 0; received ${describe(value)}`);
  }
  return value;
}

function pause(ms: number, signal: AbortSignal | undefined, mutexId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AcquireAbortedError(mutexId, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
