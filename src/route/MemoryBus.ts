/**
 * The shared medium of the memory route: what Redis is to the redis route.
 * One bus per process by default, so every client created with
 * `route: 'memory'` in one process sees the others; tests create their own.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { Packr, Unpackr } from 'msgpackr';
import { SnapshotError } from '../errors/SnapshotError';
import { ValidationError } from '../errors/ValidationError';
import { globBytes, globMatchBytes, type GlobBytes } from './glob';
import { MemoryStreams } from './MemoryStreams';
import { newUuid } from '../envelope/ids';
import type { HeldInstanceId } from './Route';

/**
 * The key under which a MemoryDeployment's options carry its bus: a symbol,
 * so that spreading the options passes the bus on while no public name
 * leads to it (`deployment.options.memoryBus` is undefined).
 */
export const MEMORY_BUS_OPTION: unique symbol = Symbol('intracom.memoryBus');

/** One connected memory route, as the bus sees it. */
export interface MemoryEndpoint {
  hasChannel(channel: string): boolean;
  patternsMatching(channel: string): string[];
  deliver(channel: string, pattern: string | undefined, frame: Buffer): void;
}

/** Options of a {@link MemoryBus}. */
export interface MemoryBusOptions {
  /**
   * Where the durable queues (streams, consumer groups, pending entries,
   * completion records) are kept across restarts: restored when the first
   * route connects, written (atomically) when the last route closes. A
   * missing file restores nothing; an unreadable one fails `connect()` with
   * a SnapshotError.
   * @default undefined (queues live and die with the process)
   */
  snapshotFile?: string;
}

interface StoredValue {
  value: Buffer;
  expiresAt: number;
  /** A completion record of the durable queues: saved in the snapshot with them. */
  done?: boolean;
}

/** First word of a snapshot file, so that a foreign msgpack file is refused by name. */
const SNAPSHOT_MAGIC = 'intracom.memory-snapshot';
const SNAPSHOT_VERSION = 1;
/** Expired keys are swept when the store reaches this size, then twice its live size. */
const FIRST_SWEEP_AT = 1024;

/**
 * What the memory routes of one bus share: subscribers, keys, the instance
 * registry and the durable queues (`MemoryStreams`), which a snapshot
 * file can carry across a restart (see {@link MemoryBusOptions.snapshotFile}).
 */
export class MemoryBus {
  private readonly endpoints = new Set<MemoryEndpoint>();
  private readonly store = new Map<string, StoredValue>();
  private readonly registries = new Map<string, Map<string, StoredValue>>();
  private readonly patternCache = new Map<string, GlobBytes>();
  /** The last subject matched, encoded: one publish matches one channel against every pattern. */
  private lastSubject: { text: string; bytes: GlobBytes } = { text: '', bytes: globBytes('') };
  private deliveries: Array<{ endpoint: MemoryEndpoint; channel: string; pattern: string | undefined; frame: Buffer }> = [];
  private delivering: NodeJS.Immediate | undefined;
  /** Callers of {@link delivered} waiting for the queued deliveries. */
  private deliveryWaiters: Array<() => void> = [];
  private file: string | undefined;
  /** The one restore of this bus (undefined until a route connects, or again after a failed one). */
  private restoring: Promise<void> | undefined;
  private sweepAt = FIRST_SWEEP_AT;

  /** The durable queues (Redis Streams semantics) of every route on this bus. */
  readonly streams = new MemoryStreams();

  /** The bus shared by every memory route of this process that was not given one. */
  static readonly shared = new MemoryBus();

  constructor(options: MemoryBusOptions = {}) {
    this.file = options.snapshotFile;
  }

  /** The snapshot file, when one was given (to the bus or by a route). */
  get snapshotFile(): string | undefined {
    return this.file;
  }

  /**
   * Gives the bus its snapshot file (what a route's `snapshotFile` option
   * does). One bus has one file: naming another, or naming one after routes
   * started without it, throws a ValidationError.
   */
  useSnapshotFile(file: string): void {
    if (this.file === file) return;
    if (this.file !== undefined) throw new ValidationError(`snapshotFile: this memory bus already keeps its snapshot in "${this.file}"; received "${file}"`);
    if (this.restoring !== undefined) throw new ValidationError(`snapshotFile "${file}": routes of this memory bus already run without one; name it before the first connect`);
    this.file = file;
  }

  /**
   * Adds a connecting route. The first one restores the snapshot (once per
   * bus); a SnapshotError rejects, and the next connect tries again.
   */
  async attach(endpoint: MemoryEndpoint): Promise<void> {
    if (this.restoring === undefined) {
      const file = this.file;
      this.restoring = file === undefined ? Promise.resolve() : this.loadSnapshot(file).then(() => undefined);
      this.restoring.catch(() => (this.restoring = undefined));
    }
    await this.restoring;
    this.endpoints.add(endpoint);
  }

  /** Removes a closing route; when it was the last one, writes the snapshot (if a file was given and was restored first). */
  async detach(endpoint: MemoryEndpoint): Promise<void> {
    if (!this.endpoints.delete(endpoint) || this.endpoints.size > 0) return;
    // never overwrite a file that was not restored (a corrupt one stays for inspection)
    if (this.file !== undefined && this.restoring !== undefined) await this.saveSnapshot(this.file);
  }

  /**
   * Writes every stream (entries, groups with their last-delivered ids,
   * pending lists with delivery counts and times) and the live completion
   * records to `file`, atomically: a crash mid-write leaves the previous file.
   */
  async saveSnapshot(file: string): Promise<void> {
    // the state is captured synchronously, so nothing done during the write leaks into half of it
    const bytes = new Packr({ useRecords: false }).pack([SNAPSHOT_MAGIC, SNAPSHOT_VERSION, this.streams.snapshot(), this.doneRecords()]);
    const temporary = `${file}.${process.pid}.${newUuid()}.tmp`;
    try {
      await writeFile(temporary, bytes);
      await rename(temporary, file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw new SnapshotError(file, `cannot be written: ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Restores a snapshot written by {@link saveSnapshot}: its streams replace
   * the streams of the same names, so undelivered entries are delivered and
   * pending ones can be claimed again. Resolves false when the file does not
   * exist; rejects with a SnapshotError, changing nothing, when it is not a
   * readable snapshot.
   */
  async loadSnapshot(file: string): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new SnapshotError(file, `cannot be read: ${(error as Error).message}`, { cause: error });
    }
    let decoded: unknown;
    try {
      decoded = new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(bytes);
    } catch (error) {
      throw new SnapshotError(file, `not msgpack: ${(error as Error).message}`, { cause: error });
    }
    if (!Array.isArray(decoded) || decoded.length !== 4 || decoded[0] !== SNAPSHOT_MAGIC) throw new SnapshotError(file, 'not an intracom memory snapshot');
    if (decoded[1] !== SNAPSHOT_VERSION) throw new SnapshotError(file, `snapshot version ${JSON.stringify(decoded[1])} is not supported (this library writes ${SNAPSHOT_VERSION})`);
    const records = decoded[3] as unknown;
    if (!Array.isArray(records) || !records.every((r) => Array.isArray(r) && r.length === 2 && typeof r[0] === 'string' && typeof r[1] === 'number')) {
      throw new SnapshotError(file, 'completion records must be [key, expiresAt] pairs');
    }
    try {
      this.streams.restore(decoded[2]);
    } catch (error) {
      throw new SnapshotError(file, (error as Error).message, { cause: error });
    }
    for (const [key, expiresAt] of records as Array<[string, number]>) {
      if (expiresAt > Date.now()) this.store.set(key, { value: Buffer.from('1'), expiresAt, done: true });
    }
    return true;
  }

  /** Writes a completion record of the durable queues (a key like any other, remembered by snapshots). */
  recordDone(key: string, ttlMs: number): void {
    this.set(key, Buffer.from('1'), ttlMs);
    (this.store.get(key) as StoredValue).done = true;
  }

  /** True when `channel` (or a key) matches the glob `pattern` as Redis matches it (Redis's own matcher, ported). */
  matches(pattern: string, channel: string): boolean {
    let compiled = this.patternCache.get(pattern);
    if (compiled === undefined) {
      if (this.patternCache.size >= 10_000) this.patternCache.clear(); // patterns come and go with subscriptions and KEYS calls
      compiled = globBytes(pattern);
      this.patternCache.set(pattern, compiled);
    }
    if (this.lastSubject.text !== channel) this.lastSubject = { text: channel, bytes: globBytes(channel) };
    return globMatchBytes(compiled, this.lastSubject.bytes);
  }

  /** How many routes subscribe to `channel` exactly (patterns not counted). */
  channelSubscribers(channel: string): number {
    let count = 0;
    for (const endpoint of this.endpoints) if (endpoint.hasChannel(channel)) count += 1;
    return count;
  }

  /**
   * Delivers asynchronously, in order, on a later turn of the event loop (as
   * a network would: delivering from the microtask queue would let a
   * request/reply loop between two clients starve every timer and all I/O of
   * the process); returns the receiver count as Redis counts it.
   */
  publish(channel: string, frame: Buffer): number {
    let receivers = 0;
    for (const endpoint of this.endpoints) {
      if (endpoint.hasChannel(channel)) {
        receivers += 1;
        this.deliveries.push({ endpoint, channel, pattern: undefined, frame });
      }
      for (const pattern of endpoint.patternsMatching(channel)) {
        receivers += 1;
        this.deliveries.push({ endpoint, channel, pattern, frame });
      }
    }
    if (receivers > 0 && this.delivering === undefined) this.delivering = setImmediate(this.deliverQueued);
    return receivers;
  }

  /** Hands over every frame published before this turn, in order (one setImmediate for all of them). */
  private readonly deliverQueued = (): void => {
    this.delivering = undefined;
    const due = this.deliveries;
    this.deliveries = [];
    const waiting = this.deliveryWaiters;
    this.deliveryWaiters = [];
    for (const { endpoint, channel, pattern, frame } of due) endpoint.deliver(channel, pattern, frame);
    for (const resolve of waiting) resolve();
  };

  /**
   * Resolves once every frame published so far has been handed over: an
   * unsubscription confirmed after that, as Redis confirms one after the
   * frames it sent before it, so that a receiver counted by a publisher
   * receives.
   */
  delivered(): Promise<void> {
    if (this.delivering === undefined) return Promise.resolve();
    return new Promise((resolve) => this.deliveryWaiters.push(resolve));
  }

  get(key: string): Buffer | null {
    const stored = this.store.get(key);
    if (stored === undefined) return null;
    if (stored.expiresAt <= Date.now()) {
      this.store.delete(key);
      return null;
    }
    return stored.value;
  }

  set(key: string, value: Buffer, ttlMs?: number): void {
    this.store.set(key, { value, expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs });
    if (this.store.size >= this.sweepAt) this.sweep();
  }

  /** SET NX PX: stores only when the key is absent (or expired); true when stored. */
  setIfAbsent(key: string, value: Buffer, ttlMs: number): boolean {
    if (this.get(key) !== null) return false;
    this.set(key, value, ttlMs);
    return true;
  }

  /** PTTL: remaining ms, -1 for a key without expiry, -2 for a missing one. */
  pttl(key: string): number {
    if (this.get(key) === null) return -2;
    const expiresAt = (this.store.get(key) as StoredValue).expiresAt;
    return expiresAt === Infinity ? -1 : Math.max(0, expiresAt - Date.now());
  }

  /** The live keys matching a Redis glob pattern. */
  keys(pattern: string): string[] {
    const keys: string[] = [];
    for (const key of [...this.store.keys()]) if (this.matches(pattern, key) && this.get(key) !== null) keys.push(key);
    return keys;
  }

  del(key: string): number {
    const existed = this.get(key) !== null;
    this.store.delete(key);
    return existed ? 1 : 0;
  }

  /** Same contract as INCRBY: refuses a value that is not an integer. */
  incrBy(key: string, by: number, ttlMs?: number): number {
    const current = this.get(key);
    const text = current === null ? '0' : current.toString();
    if (!/^-?\d+$/.test(text)) throw new Error('ERR value is not an integer or out of range');
    const next = Number(text) + by;
    const expiresAt = ttlMs !== undefined ? Date.now() + ttlMs : (this.store.get(key)?.expiresAt ?? Infinity);
    this.store.set(key, { value: Buffer.from(String(next)), expiresAt });
    return next;
  }

  /** The announce script's steps (docs/protocol.md), `exclusive` mode included. */
  announce(service: string, instanceId: string, announcement: Buffer, ttlMs: number, exclusive = false): HeldInstanceId | undefined {
    let registry = this.registries.get(service);
    if (registry === undefined) {
      registry = new Map();
      this.registries.set(service, registry);
    }
    const now = Date.now();
    const held = registry.get(instanceId);
    if (exclusive && held !== undefined && held.expiresAt > now && !held.value.equals(announcement)) return { announcement: held.value, expiresInMs: held.expiresAt - now };
    registry.set(instanceId, { value: announcement, expiresAt: now + ttlMs });
    return undefined;
  }

  withdraw(service: string, instanceId: string): void {
    this.registries.get(service)?.delete(instanceId);
  }

  liveInstances(service: string): Buffer[] {
    const registry = this.registries.get(service);
    if (registry === undefined) return [];
    const now = Date.now();
    const live: Buffer[] = [];
    for (const [id, entry] of registry) {
      if (entry.expiresAt <= now) registry.delete(id);
      else live.push(entry.value);
    }
    return live;
  }

  /**
   * Drops expired keys. Keys are otherwise expired only when read, and a
   * completion record per processed query is never read again: without this
   * the store would grow with every query. Amortised O(1) per write.
   */
  private sweep(): void {
    const now = Date.now();
    for (const [key, stored] of this.store) if (stored.expiresAt <= now) this.store.delete(key);
    this.sweepAt = Math.max(FIRST_SWEEP_AT, this.store.size * 2);
  }

  private doneRecords(): Array<[string, number]> {
    const now = Date.now();
    const records: Array<[string, number]> = [];
    for (const [key, stored] of this.store) if (stored.done === true && stored.expiresAt > now) records.push([key, stored.expiresAt]);
    return records;
  }
}
