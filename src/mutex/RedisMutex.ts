import { performance } from 'node:perf_hooks';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Names } from '../../vars/names';
import { LockLostError } from '../errors/LockLostError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { ValidationError } from '../errors/ValidationError';
import { withinMs } from '../route/withinMs';
import { cut } from '../route/connection';
import { silence } from '../log/logger';
import { HeldLocks } from './HeldLocks';
import { releaseLateLock } from './lateReply';
import { LockKeys } from './LockKeys';
import { label, MutexCommands } from './MutexCommands';
import { MutexConnection } from './MutexConnection';
import { MutexLock } from './MutexLock';
import { parseAcquireOptions, parseMutexOptions, type MutexSettings, type ResolvedAcquire } from './mutexSettings';
import { assertMutexId, assertTimeout, decodeValue, describe, encodeValue, freeRecord, type MutexRecord } from './record';
import { DEFAULT_MUTEX_OPTIONS, MUTEX_OPTION_NAMES, type AcquireOptions, type RedisMutexOptions } from './RedisMutexOptions';
import { refuseUnknownOptions } from '../../vars/options';
import { Acquisition } from './Acquisition';
import type { AttemptReply, MutexKeys, QueueAs } from './MutexStore';
import { MutexWakeups } from './MutexWakeups';

/** The critical section run by {@link RedisMutex.withMutex}. */
export type CriticalSection<T> = (signal: AbortSignal, lock: MutexLock) => T | Promise<T>;

/**
 * A shared mutex on Redis `SET NX PX` (OpenTera's P/V, and more): a lock that only one
 * node holds at a time, released by its holder (`V`) or by Redis after its
 * timeout.
 *
 * - `P(mutexId, nodeId, timeoutMs)` tries once and answers true when taken;
 *   `V(mutexId)` releases only if this RedisMutex still holds it (the owner
 *   token is compared and deleted in one Lua script).
 * - `acquire` waits in arrival order (the release hands the mutex over at
 *   once; deadline, AbortSignal), and returns a
 *   {@link MutexLock} with a fencing token; `withMutex` runs a function under
 *   the lock, refreshes it, hands the function a signal that fires if the lock
 *   is lost, and releases it in every case.
 * - `inspect` and `list` read the mutex record ({@link MutexRecord}).
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
export class RedisMutex extends EventEmitter {
  /** Key names of this deployment. */
  readonly names: Names;
  /** Default node id of `acquire`, `tryAcquire` and `withMutex`. */
  readonly nodeId: string;
  /** The mutex's logger (`module: 'mutex'`). */
  readonly logger: Logger;
  private readonly connection: MutexConnection;
  private readonly settings: MutexSettings;
  private readonly commands: MutexCommands;
  private readonly locks = new HeldLocks();
  private readonly keys: LockKeys;
  /** @internal The hand-over notices of this RedisMutex's waiting acquires. */
  readonly wakeups: MutexWakeups;
  /** The waiting acquires, and their outcome (settled, never rejecting). */
  private readonly acquisitions = new Map<Acquisition, Promise<unknown>>();
  private closing: Promise<void> | undefined;

  constructor(options: RedisMutexOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describe(options)}`);
    refuseUnknownOptions('RedisMutex', options, MUTEX_OPTION_NAMES);
    this.connection = new MutexConnection(options.redis);
    try {
      this.names = new Names(options.namespace ?? this.connection.namespace ?? DEFAULT_MUTEX_OPTIONS.namespace);
    } catch (error) {
      throw new ValidationError((error as Error).message);
    }
    this.settings = parseMutexOptions(options, this.connection.defaultNodeId);
    this.nodeId = this.settings.nodeId;
    this.logger = this.settings.logger;
    this.commands = new MutexCommands(this.connection, this.settings.commandTimeoutMs);
    this.keys = new LockKeys(this.names);
    this.wakeups = new MutexWakeups(this.connection.store, (mutexId) => this.names.mutexWake(this.keys.waiterId, mutexId), (mutexId, value) => this.unclaimed(mutexId, value), this.logger);
    this.connection.reportOutages(this.logger);
  }

  // ---- P and V, as OpenTera has them ----

  /**
   * Tries once to take `mutexId` for `timeoutMs` ms, recording `nodeId` as
   * its holder. Resolves true when taken (Redis releases it by itself after
   * `timeoutMs` unless `V` or `extend` comes first), false when another
   * holder has it. Not re-entrant: false also when this RedisMutex holds it.
   * Rejects with ValidationError on a bad argument and RedisUnavailableError
   * when Redis does not answer.
   */
  P(mutexId: string, nodeId: string, timeoutMs: number): Promise<boolean> {
    // Not async, and the key cached per id: P is the fast path, one SET NX PX, no script, no fence.
    let keys: MutexKeys;
    try {
      keys = this.keys.of(mutexId);
      this.keys.checkNodeId(nodeId);
      assertTimeout(timeoutMs);
      this.assertOpen('P');
    } catch (error) {
      return Promise.reject(error);
    }
    const sentAt = Date.now();
    const value = encodeValue(this.keys.nextToken(), null, sentAt, timeoutMs, nodeId);
    return this.commands.run(
      'P',
      mutexId,
      (store) => store.setIfAbsent(keys.lock, value, timeoutMs),
      (late) => late && this.releaseLate(keys, value, 'P', mutexId),
      (taken): boolean | Promise<never> => {
        if (!taken) return false;
        const closed = this.register(new MutexLock(this, { mutexId, keys, nodeId, fence: null, value, takenAt: sentAt, timeoutMs, sentAt }), 'P');
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
      if (lock === undefined) this.keys.of(mutexId);
      this.assertOpen('V');
    } catch (error) {
      return Promise.reject(error);
    }
    return lock === undefined ? Promise.resolve(false) : this.releaseLock(lock);
  }

  // ---- beyond P and V ----

  /**
   * Tries once, like `P`, and returns the {@link MutexLock} (with its fencing
   * token) when taken, null when another holder has it.
   */
  async tryAcquire(mutexId: string, options: AcquireOptions = {}): Promise<MutexLock | null> {
    assertMutexId(mutexId);
    const settings = parseAcquireOptions(options, this.settings, false);
    this.assertOpen('tryAcquire');
    const lock = await this.take(mutexId, settings, 'tryAcquire');
    if (lock === null) return null;
    if (settings.autoRefresh) lock.startRefresh(this.settings.refreshRatio);
    return lock;
  }

  /**
   * Takes `mutexId`, waiting while another node holds it: queues, in arrival
   * order, and is handed the mutex by the release that frees it; it also
   * attempts every `retryDelayMs` plus up to `retryJitterMs` (sooner when the
   * holder's lease ends first), until `waitMs` has passed. Resolves with the
   * {@link MutexLock}; rejects with AcquireTimeoutError when the wait ran out,
   * AcquireAbortedError when `signal` fired, RedisUnavailableError when Redis
   * does not answer (at once: it does not retry through an outage).
   */
  async acquire(mutexId: string, options: AcquireOptions = {}): Promise<MutexLock> {
    assertMutexId(mutexId);
    const settings = parseAcquireOptions(options, this.settings, false);
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
    const settings = parseAcquireOptions(options, this.settings, true);
    this.assertOpen('withMutex');
    const lock = await this.acquireWith(mutexId, settings, 'withMutex');
    let result: T;
    try {
      result = await fn(lock.signal, lock);
      if (!lock.lost && !lock.held) lock.leaseRanOut('its timeout passed while the critical section ran, with no confirmed extension (was the event loop blocked?)');
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

  /** The record of one mutex, read from Redis (taken or free). */
  async inspect(mutexId: string): Promise<MutexRecord> {
    assertMutexId(mutexId);
    this.assertOpen('inspect');
    const key = this.names.mutex(mutexId);
    const reply = await this.commands.run('inspect', mutexId, (store) => store.read(key));
    return reply ? decodeValue(mutexId, reply[0], reply[1]) : freeRecord(mutexId);
  }

  /** The records of every mutex held in this namespace, by `mutexId` (SCAN, so it does not block Redis). */
  async list(): Promise<MutexRecord[]> {
    this.assertOpen('list');
    const [head, tail] = this.names.mutex('\u0000').split('\u0000');
    const keys = await this.commands.run('list', undefined, (store) => store.keys(this.names.mutexScanPattern()));
    const records = await Promise.all(
      keys.map(async (key) => {
        const mutexId = key.slice(head.length, key.length - tail.length);
        const reply = await this.commands.run('list', mutexId, (store) => store.read(key));
        return reply ? decodeValue(mutexId, reply[0], reply[1]) : undefined;
      }),
    );
    return records.filter((r): r is MutexRecord => r !== undefined).sort((a, b) => (a.mutexId < b.mutexId ? -1 : a.mutexId > b.mutexId ? 1 : 0));
  }

  /**
   * Releases every mutex this RedisMutex holds (their signals fire: a
   * critical section still running is no longer protected), stops refreshing,
   * and closes the connection if it was created here, within
   * `closeTimeoutMs` whatever Redis does (a lock not released by then expires
   * at its timeout; logged). Later calls reject with NotConnectedError.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const deadline = performance.now() + this.settings.closeTimeoutMs;
      const left = () => Math.max(0, deadline - performance.now());
      await withinMs(this.connection.settled(), left());
      // waiting acquires end first (each leaves its queue), then what is held is released
      for (const acquisition of this.acquisitions.keys()) acquisition.cancel(new NotConnectedError(label('acquire', acquisition.mutexId), 'closed'));
      await withinMs(Promise.all(this.acquisitions.values()), left());
      const held = this.locks.all();
      const releasing = Promise.all(
        held.map(async (lock) => {
          lock.markLost('RedisMutex.close() released it', false);
          try {
            await this.releaseLock(lock);
          } catch (error) {
            this.logger.warn({ err: error, mutexId: lock.mutexId }, 'could not release a mutex on close; Redis frees it at its timeout');
          }
        }),
      );
      if (!(await withinMs(releasing, left()))) {
        this.logger.warn({ mutexIds: held.map((lock) => lock.mutexId), closeTimeoutMs: this.settings.closeTimeoutMs }, 'closed before Redis confirmed the release of these mutexes; they expire at their timeout');
      }
      this.commands.close();
      this.locks.close();
      await withinMs(this.wakeups.close(), left());
      // a QUIT Redis never answered: cut the connection (ours only)
      if (!(await withinMs(this.connection.close(), left())) && this.connection.owned && this.connection.redis !== undefined) await cut(this.connection.redis);
      silence(this.logger);
    })();
    return this.closing;
  }

  // ---- LockBackend (used by MutexLock) ----

  /** @internal */
  async extendLock(lock: MutexLock, timeoutMs: number): Promise<boolean> {
    assertTimeout(timeoutMs);
    return this.commands.run('extend', lock.mutexId, (store) => store.extendIfHeld(lock.keys.lock, lock.value, timeoutMs));
  }

  /** @internal */
  releaseLock(lock: MutexLock): Promise<boolean> {
    if (!lock.claimRelease()) return Promise.resolve(false);
    this.locks.delete(lock);
    const { mutexId } = lock;
    // an acquire here waiting for this mutex: if it is next, the release hands it the lock in its reply (no notice)
    const own = this.wakeups.ownChannel(mutexId);
    return this.commands.run(
      'V',
      mutexId,
      (store) => store.releaseIfHeld(lock.keys, mutexId, lock.value, own),
      (late) => typeof late === 'string' && this.wakeups.handedHere(mutexId, late),
      (released) => {
        if (typeof released !== 'string') return released;
        this.wakeups.handedHere(mutexId, released);
        return true;
      },
    );
  }

  /** @internal */
  reportLost(lock: MutexLock, error: LockLostError, expired: boolean): void {
    // A lost lock is forgotten: it can never be held again, and the lease timer no longer wakes for it.
    this.locks.delete(lock);
    const fields = { mutexId: lock.mutexId, fence: lock.fence, reason: error.message };
    if (expired) this.logger.debug(fields, 'mutex lease ran out');
    else this.logger.warn(fields, 'mutex lost');
    if (this.listenerCount('lost') > 0) this.emit('lost', error);
  }

  /** @internal */
  reportRefreshFailure(lock: MutexLock, error: unknown): void {
    this.logger.warn({ err: error, mutexId: lock.mutexId, expiresAt: lock.expiresAt }, 'could not extend a mutex; retrying until its timeout');
  }

  // ---- AcquisitionHost (used by the waiting acquires) ----

  /** @internal */
  attempt(acquisition: Acquisition, sentAt: number, queue: QueueAs | null): Promise<AttemptReply> {
    const { mutexId, token, settings } = acquisition;
    const keys = this.keys.of(mutexId);
    return this.commands.run(
      'acquire',
      mutexId,
      (store) => store.takeFenced(keys, mutexId, token, sentAt, settings.timeoutMs, settings.nodeId, queue),
      (late) => {
        // the caller was told the attempt failed: what it took, or its place in the queue, is given back
        if (late[0] === 1) this.releaseLate(keys, encodeValue(token, late[1], sentAt, settings.timeoutMs, settings.nodeId), 'acquire', mutexId);
        else if (late[0] === 2) this.releaseLate(keys, late[1], 'acquire', mutexId);
        else if (queue) void this.leave(acquisition);
      },
    );
  }

  /** @internal */
  lockOf(acquisition: Acquisition, value: string | null, fence: number, takenAt: number, sentAt: number): MutexLock {
    const { mutexId, token, settings } = acquisition;
    const stored = value ?? encodeValue(token, fence, takenAt, settings.timeoutMs, settings.nodeId);
    const lock = new MutexLock(this, { mutexId, keys: this.keys.of(mutexId), nodeId: settings.nodeId, fence, value: stored, takenAt, timeoutMs: settings.timeoutMs, sentAt });
    this.locks.add(lock);
    return lock;
  }

  /** @internal */
  confirm(acquisition: Acquisition, value: string): Promise<boolean> {
    const { mutexId, settings } = acquisition;
    const keys = this.keys.of(mutexId);
    // a late extension changes nothing the caller relies on: the failed wait leaves, which passes the lock on
    return this.commands.run('acquire', mutexId, (store) => store.extendIfHeld(keys.lock, value, settings.timeoutMs));
  }

  /** @internal */
  async leave(acquisition: Acquisition): Promise<void> {
    const { mutexId, token, settings } = acquisition;
    try {
      await this.commands.run('acquire', mutexId, (store) => store.leave(this.keys.of(mutexId), mutexId, token, settings.timeoutMs, settings.nodeId));
    } catch (error) {
      this.logger.debug({ err: error, mutexId }, 'could not leave the queue of a mutex; the place lapses on its own');
    }
  }

  /** @internal */
  giveBack(lock: MutexLock): Promise<void> {
    return this.releaseQuietly(lock);
  }

  // ---- internals ----

  /** The waiting acquire of `acquire` and `withMutex`. */
  private async acquireWith(mutexId: string, settings: ResolvedAcquire, operation: string): Promise<MutexLock> {
    const acquisition = new Acquisition(mutexId, settings, this.keys.nextToken(), this);
    const running = acquisition.run();
    this.acquisitions.set(acquisition, running.catch(() => undefined));
    let lock: MutexLock;
    try {
      lock = await running;
    } finally {
      this.acquisitions.delete(acquisition);
    }
    if (this.closing) {
      // close() began while the hand-over was on its way: hand nothing out
      await this.releaseQuietly(lock);
      throw new NotConnectedError(label(operation, mutexId), 'closed');
    }
    if (settings.autoRefresh) lock.startRefresh(this.settings.refreshRatio);
    return lock;
  }

  /** tryAcquire's attempt (never queues): the new lock, or null when the mutex is held or handed to a waiter. */
  private async take(mutexId: string, settings: ResolvedAcquire, operation: string): Promise<MutexLock | null> {
    const keys = this.keys.of(mutexId);
    const token = this.keys.nextToken();
    const sentAt = Date.now();
    const { timeoutMs, nodeId } = settings;
    const [taken, reply] = await this.commands.run(
      operation,
      mutexId,
      (store) => store.takeFenced(keys, mutexId, token, sentAt, timeoutMs, nodeId, null),
      (late) => late[0] === 1 && this.releaseLate(keys, encodeValue(token, late[1], sentAt, timeoutMs, nodeId), operation, mutexId),
    );
    if (taken !== 1) return null;
    const fence = reply;
    const value = encodeValue(token, fence, sentAt, timeoutMs, nodeId); // the value the script stored
    const lock = new MutexLock(this, { mutexId, keys, nodeId, fence, value, takenAt: sentAt, timeoutMs, sentAt });
    const closed = this.register(lock, operation);
    if (closed) await closed;
    return lock;
  }

  /** Records a lock just taken, unless close() began while it was in flight: then it is given back and nothing is handed out. */
  private register(lock: MutexLock, operation: string): Promise<never> | undefined {
    this.locks.add(lock);
    if (!this.closing) return undefined;
    return this.releaseQuietly(lock).then(() => {
      throw new NotConnectedError(label(operation, lock.mutexId), 'closed');
    });
  }

  /**
   * A hand-over notice that no waiting acquire claimed (it gave up or failed
   * while the lock was being handed to it): unless that lock is held here,
   * it is given back, so that it does not block everyone until its timeout.
   */
  private unclaimed(mutexId: string, value: string): void {
    if (!value.startsWith(this.keys.waiterId) || this.closing) return; // not one of ours
    let keys: MutexKeys;
    try {
      keys = this.keys.of(mutexId);
    } catch {
      return; // not a notice intracom sent
    }
    if (this.locks.get(mutexId)?.value === value) return;
    this.logger.debug({ mutexId }, 'a mutex was handed to an acquire that had given up; passing it on');
    this.connection.store.releaseIfHeld(keys, mutexId, value).catch((error: unknown) => {
      this.logger.warn({ err: error, mutexId }, 'could not pass on a mutex handed to an acquire that had given up; Redis frees it at its timeout');
    });
  }

  private releaseLate(keys: MutexKeys, value: string, operation: string, mutexId: string): void {
    releaseLateLock(this.connection.store, this.logger, keys, mutexId, value, label(operation, mutexId));
  }

  private async releaseQuietly(lock: MutexLock): Promise<void> {
    try {
      await this.releaseLock(lock);
    } catch (error) {
      this.logger.warn({ err: error, mutexId: lock.mutexId }, 'could not release a mutex; Redis frees it at its timeout');
    }
  }

  private assertOpen(operation: string): void {
    if (this.closing) throw new NotConnectedError(operation, 'closed');
  }
}
