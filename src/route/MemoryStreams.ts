import type { StreamEntry, StreamGroupInfo, StreamInfo } from './StreamStore';

/**
 * Error texts are Redis's own, so that code above the route that inspects a
 * message (`NOGROUP`, invalid id) behaves the same on both routes.
 */
const INVALID_ID = 'ERR Invalid stream ID specified as stream command argument';
const NO_KEY_FOR_XGROUP =
  'ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.';

/** Above this many tombstones (and more than live entries), the entry array is compacted. */
const COMPACT_MIN_TOMBSTONES = 32;

interface Id {
  ms: number;
  seq: number;
}

interface StoredEntry extends Id {
  id: string;
  payload: Buffer;
  deleted: boolean;
}

interface PendingEntry extends Id {
  consumer: string;
  deliveries: number;
  deliveredAt: number;
}

interface Group {
  last: Id;
  /**
   * Keyed by entry id. Insertion order is id order: entries only join through
   * `>` reads, which deliver ids above every id delivered before (and a
   * restore inserts sorted), so iteration matches XPENDING's order.
   */
  pending: Map<string, PendingEntry>;
}

interface Waiter {
  owner: object;
  group: string;
  consumer: string;
  count: number;
  resolve: (entries: StreamEntry[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

interface Stream {
  /** Sorted by id; deleted entries stay as tombstones until compaction. */
  entries: StoredEntry[];
  live: number;
  tombstones: number;
  /** The last id ever generated, kept across deletions as Redis keeps it. */
  last: Id;
  groups: Map<string, Group>;
  /** Blocked `>` reads, served in the order they blocked (as Redis does). */
  waiters: Waiter[];
}

/** A stream as a snapshot holds it: `[name, lastMs, lastSeq, entries, groups]`. */
export type StreamSnapshot = [
  name: string,
  lastMs: number,
  lastSeq: number,
  entries: Array<[ms: number, seq: number, payload: Buffer]>,
  groups: Array<[name: string, lastMs: number, lastSeq: number, pending: Array<[ms: number, seq: number, consumer: string, deliveries: number, deliveredAt: number]>]>,
];

function compare(a: Id, b: Id): number {
  return a.ms - b.ms || a.seq - b.seq;
}

function format(id: Id): string {
  return `${id.ms}-${id.seq}`;
}

const DIGITS = /^\d+$/;

/** Parses `<ms>-<seq>` or `<ms>` (the missing part taking `missingSeq`), as Redis does. */
function parseId(text: string, missingSeq: number): Id {
  const dash = text.indexOf('-');
  const msText = dash === -1 ? text : text.slice(0, dash);
  const seqText = dash === -1 ? undefined : text.slice(dash + 1);
  if (!DIGITS.test(msText) || (seqText !== undefined && !DIGITS.test(seqText))) throw new Error(INVALID_ID);
  return { ms: Number(msText), seq: seqText === undefined ? missingSeq : Number(seqText) };
}

/** A range bound: `-`, `+`, an id, or `(id` (exclusive, Redis 6.2+). */
function parseBound(text: string, isStart: boolean): Id | undefined {
  if (text === '-') return { ms: 0, seq: 0 };
  if (text === '+') return { ms: Infinity, seq: Infinity };
  if (!text.startsWith('(')) return parseId(text, isStart ? 0 : Infinity);
  const id = parseId(text.slice(1), isStart ? 0 : Infinity);
  // an exclusive bound is the inclusive bound one id further in; undefined when nothing lies beyond it
  if (isStart) return id.seq === Infinity ? (id.ms === Infinity ? undefined : { ms: id.ms + 1, seq: 0 }) : { ms: id.ms, seq: id.seq + 1 };
  if (id.seq > 0) return { ms: id.ms, seq: id.seq - 1 };
  return id.ms > 0 ? { ms: id.ms - 1, seq: Infinity } : undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** What Redis 7 answers a read blocked on a group that was destroyed meanwhile. */
const GROUP_GONE = 'NOGROUP the consumer group this client was blocked on no longer exists';

function noGroup(stream: string, group: string, command: string): Error {
  return new Error(`NOGROUP No such key '${stream}' or consumer group '${group}'${command}`);
}

/**
 * The memory route's Redis Streams: entries with `<ms>-<seq>` ids, consumer
 * groups with last-delivered ids and pending entries lists (delivery counts,
 * delivery times), blocking reads woken by appends. Each method is one
 * synchronous step, so what Redis does in one command or Lua script is atomic
 * here too. Payloads are copied in and out, as bytes crossing a network are.
 * One instance per {@link MemoryBus}, shared by its routes.
 */
export class MemoryStreams {
  private readonly streams = new Map<string, Stream>();

  /** XADD `*`: appends a copy of `payload` and returns its id. */
  /** The names of the streams that exist (as Redis lists a stream among its keys). */
  names(): string[] {
    return [...this.streams.keys()];
  }

  add(name: string, payload: Buffer): string {
    const stream = this.streamOrCreate(name);
    const now = Date.now();
    // same rule as Redis: a clock that did not move (or went back) bumps the sequence
    const id = now > stream.last.ms ? { ms: now, seq: 0 } : { ms: stream.last.ms, seq: stream.last.seq + 1 };
    stream.last = id;
    stream.entries.push({ ...id, id: format(id), payload: Buffer.from(payload), deleted: false });
    stream.live += 1;
    this.serveWaiters(stream);
    return format(id);
  }

  /** XGROUP CREATE ... MKSTREAM; false when the group exists. */
  ensureGroup(name: string, group: string, from: '0' | '$'): boolean {
    const stream = this.streamOrCreate(name);
    if (stream.groups.has(group)) return false;
    stream.groups.set(group, { last: from === '0' ? { ms: 0, seq: 0 } : { ...stream.last }, pending: new Map() });
    return true;
  }

  /** XGROUP DESTROY: blocked reads of the group fail with NOGROUP, as the group is gone. */
  destroyGroup(name: string, group: string): void {
    const stream = this.streams.get(name);
    if (stream === undefined) throw new Error(NO_KEY_FOR_XGROUP);
    if (!stream.groups.delete(group)) return;
    const orphans = stream.waiters.filter((waiter) => waiter.group === group);
    stream.waiters = stream.waiters.filter((waiter) => waiter.group !== group);
    for (const waiter of orphans) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error(GROUP_GONE));
    }
  }

  /**
   * XREADGROUP `>` with BLOCK: new entries at once, or the first ones appended
   * within `blockMs` (0: until one arrives or {@link cancel} for `owner`).
   */
  read(owner: object, name: string, group: string, consumer: string, count: number, blockMs: number): Promise<StreamEntry[]> {
    if (!isCount(blockMs)) return Promise.reject(new Error('ERR timeout is negative'));
    const stream = this.streams.get(name);
    if (stream === undefined || !stream.groups.has(group)) return Promise.reject(noGroup(name, group, ' in XREADGROUP with GROUP option'));
    const entries = this.deliverNew(stream, group, consumer, count);
    if (entries.length > 0) return Promise.resolve(entries);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { owner, group, consumer, count, resolve, reject, timer: undefined };
      if (blockMs > 0) {
        waiter.timer = setTimeout(() => {
          this.removeWaiter(stream, waiter);
          resolve([]);
        }, blockMs);
      }
      stream.waiters.push(waiter);
    });
  }

  /** XREADGROUP `>` without BLOCK: the new entries there are now (none: an empty list); undefined when the group (or the stream) is gone. */
  readNow(name: string, group: string, consumer: string, count: number): StreamEntry[] | undefined {
    const stream = this.streams.get(name);
    if (stream === undefined || !stream.groups.has(group)) return undefined;
    return this.deliverNew(stream, group, consumer, count);
  }

  /**
   * XPENDING (IDLE) + XCLAIM: moves to `consumer` up to `count` entries
   * pending for at least `minIdleMs` (only `holder`'s when given), counting a
   * delivery; entries deleted meanwhile leave the pending list unreturned.
   */
  claim(name: string, group: string, consumer: string, minIdleMs: number, count: number, holder?: string): StreamEntry[] {
    const stream = this.streams.get(name);
    const state = stream?.groups.get(group);
    if (stream === undefined || state === undefined) throw noGroup(name, group, '');
    const now = Date.now();
    const chosen: PendingEntry[] = [];
    for (const pending of state.pending.values()) {
      if (chosen.length >= count) break;
      if (holder !== undefined && pending.consumer !== holder) continue;
      if (minIdleMs > 0 && now - pending.deliveredAt < minIdleMs) continue;
      chosen.push(pending);
    }
    const claimed: StreamEntry[] = [];
    for (const pending of chosen) {
      const entry = this.find(stream, pending);
      const id = format(pending);
      if (entry === undefined) {
        state.pending.delete(id);
        continue;
      }
      pending.consumer = consumer;
      pending.deliveries += 1;
      pending.deliveredAt = now;
      claimed.push({ id, payload: Buffer.from(entry.payload), deliveries: pending.deliveries });
    }
    return claimed;
  }

  /**
   * XCLAIM ... 0 JUSTID by `consumer`, for each id pending for it, or in
   * `adopt` (taken from whoever it is pending for): the idle time goes back
   * to 0 and no delivery is counted. Answers which ids were `consumer`'s or
   * adopted (an adopted id not pending counts too); undefined when the group
   * is gone.
   */
  touch(name: string, group: string, consumer: string, ids: string[], adopt: ReadonlySet<string>): boolean[] | undefined {
    if (ids.length === 0) return [];
    const state = this.streams.get(name)?.groups.get(group);
    if (state === undefined) return undefined;
    const now = Date.now();
    return ids.map((id) => {
      const pending = state.pending.get(format(parseId(id, 0)));
      if (pending?.consumer !== consumer && !adopt.has(id)) return false;
      if (pending !== undefined) {
        pending.consumer = consumer;
        pending.deliveredAt = now;
      }
      return true;
    });
  }

  /** XACK, then XDEL when `remove`; resolves with how many were acknowledged. */
  ack(name: string, group: string, id: string, remove: boolean): number {
    const parsed = parseId(id, 0);
    const stream = this.streams.get(name);
    if (stream === undefined) return 0;
    const acked = stream.groups.get(group)?.pending.delete(format(parsed)) ? 1 : 0;
    if (remove) this.deleteOne(stream, parsed);
    return acked;
  }

  /**
   * The dead-letter step, as one: XADD to `deadStream`, XTRIM MAXLEN
   * `maxLength`, then (when `id` is given) XACK, and XDEL when `remove`.
   * Returns the new id and how many old dead letters were dropped.
   */
  deadLetter(name: string, group: string, id: string | null, deadStream: string, maxLength: number, payload: Buffer, remove: boolean): { deadId: string; dropped: number } {
    if (id !== null) parseId(id, 0); // refuse a bad id before anything changes
    const deadId = this.add(deadStream, payload);
    const dropped = this.trimToLength(deadStream, maxLength);
    if (id !== null) this.ack(name, group, id, remove);
    return { deadId, dropped };
  }

  /** XTRIM MAXLEN (exact): deletes the oldest entries beyond `maxLength`; returns how many. */
  trimToLength(name: string, maxLength: number): number {
    const stream = this.streams.get(name);
    if (stream === undefined || stream.live <= maxLength) return 0;
    let excess = stream.live - maxLength;
    let cut = 0;
    while (excess > 0 && cut < stream.entries.length) {
      if (!stream.entries[cut].deleted) excess -= 1;
      cut += 1;
    }
    const dropped = stream.live - maxLength;
    stream.tombstones -= cut - dropped;
    stream.live -= dropped;
    stream.entries.splice(0, cut);
    return dropped;
  }

  /** XRANGE with COUNT (0 gives nothing, as in Redis). */
  range(name: string, start: string, end: string, count: number): Array<{ id: string; payload: Buffer }> {
    const from = parseBound(start, true);
    const to = parseBound(end, false);
    const stream = this.streams.get(name);
    if (stream === undefined || from === undefined || to === undefined || count <= 0) return [];
    const found: Array<{ id: string; payload: Buffer }> = [];
    for (let i = this.firstIndexAtLeast(stream, from); i < stream.entries.length && found.length < count; i += 1) {
      const entry = stream.entries[i];
      if (compare(entry, to) > 0) break;
      if (!entry.deleted) found.push({ id: entry.id, payload: Buffer.from(entry.payload) });
    }
    return found;
  }

  /** XDEL: how many of `ids` existed. Pending lists keep their references, as in Redis. */
  delete(name: string, ids: string[]): number {
    const parsed = ids.map((id) => parseId(id, 0));
    const stream = this.streams.get(name);
    if (stream === undefined) return 0;
    let deleted = 0;
    for (const id of parsed) deleted += this.deleteOne(stream, id);
    return deleted;
  }

  /** XTRIM MINID (exact): deletes every entry below `minId`. */
  trimBelow(name: string, minId: string): number {
    const bound = parseId(minId, 0);
    const stream = this.streams.get(name);
    if (stream === undefined) return 0;
    const cut = this.firstIndexAtLeast(stream, bound);
    let trimmed = 0;
    for (let i = 0; i < cut; i += 1) if (!stream.entries[i].deleted) trimmed += 1;
    stream.tombstones -= cut - trimmed;
    stream.live -= trimmed;
    stream.entries.splice(0, cut);
    return trimmed;
  }

  /** XLEN, first entry, and XINFO GROUPS with the oldest pending id of each group (groups in name order, as Redis lists them). */
  info(name: string): StreamInfo {
    const stream = this.streams.get(name);
    if (stream === undefined) return { length: 0, firstId: null, groups: [] };
    const first = stream.entries.find((entry) => !entry.deleted);
    const names = [...stream.groups.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const groups: StreamGroupInfo[] = names.map((groupName) => {
      const group = stream.groups.get(groupName) as Group;
      let lag = 0;
      for (let i = this.firstIndexAbove(stream, group.last); i < stream.entries.length; i += 1) if (!stream.entries[i].deleted) lag += 1;
      const oldest = group.pending.keys().next();
      return { name: groupName, pending: group.pending.size, lag, lastDeliveredId: format(group.last), oldestPendingId: oldest.done ? null : oldest.value };
    });
    return { length: stream.live, firstId: first === undefined ? null : first.id, groups };
  }

  /** Ends every blocked read of `owner` with no entries (its route is closing). */
  cancel(owner: object): void {
    for (const stream of this.streams.values()) {
      if (stream.waiters.length === 0) continue;
      const ending = stream.waiters.filter((waiter) => waiter.owner === owner);
      if (ending.length === 0) continue;
      stream.waiters = stream.waiters.filter((waiter) => waiter.owner !== owner);
      for (const waiter of ending) {
        clearTimeout(waiter.timer);
        waiter.resolve([]);
      }
    }
  }

  /** Every stream, with its groups and pending lists, as plain data for a snapshot. */
  snapshot(): StreamSnapshot[] {
    return [...this.streams].map(([name, stream]) => [
      name,
      stream.last.ms,
      stream.last.seq,
      stream.entries.filter((entry) => !entry.deleted).map((entry) => [entry.ms, entry.seq, entry.payload]),
      [...stream.groups].map(([groupName, group]) => [
        groupName,
        group.last.ms,
        group.last.seq,
        [...group.pending.values()].map((pending) => [pending.ms, pending.seq, pending.consumer, pending.deliveries, pending.deliveredAt]),
      ]),
    ]);
  }

  /**
   * Replaces the streams named in `data` (a {@link snapshot}); others stay.
   * Everything is checked before anything changes: a bad snapshot throws
   * with the reason and leaves the streams as they were.
   */
  restore(data: unknown): void {
    if (!Array.isArray(data)) throw new Error('expected a list of streams');
    const restored = data.map((item, index) => readStream(item, index));
    for (const [name, stream] of restored) {
      const previous = this.streams.get(name);
      this.streams.set(name, stream);
      if (previous !== undefined && previous.waiters.length > 0) {
        stream.waiters = previous.waiters.filter((waiter) => stream.groups.has(waiter.group));
        for (const waiter of previous.waiters) {
          if (stream.groups.has(waiter.group)) continue;
          clearTimeout(waiter.timer);
          waiter.reject(new Error(GROUP_GONE));
        }
        this.serveWaiters(stream);
      }
    }
  }

  private streamOrCreate(name: string): Stream {
    let stream = this.streams.get(name);
    if (stream === undefined) {
      stream = { entries: [], live: 0, tombstones: 0, last: { ms: 0, seq: 0 }, groups: new Map(), waiters: [] };
      this.streams.set(name, stream);
    }
    return stream;
  }

  /** The `>` delivery: entries after the group's last-delivered id join the consumer's pending list. */
  private deliverNew(stream: Stream, groupName: string, consumer: string, count: number): StreamEntry[] {
    const group = stream.groups.get(groupName) as Group;
    const limit = count > 0 ? count : Infinity; // COUNT 0 means no limit for XREADGROUP
    const delivered: StreamEntry[] = [];
    const now = Date.now();
    for (let i = this.firstIndexAbove(stream, group.last); i < stream.entries.length && delivered.length < limit; i += 1) {
      const entry = stream.entries[i];
      if (entry.deleted) continue;
      group.last = { ms: entry.ms, seq: entry.seq };
      group.pending.set(entry.id, { ms: entry.ms, seq: entry.seq, consumer, deliveries: 1, deliveredAt: now });
      delivered.push({ id: entry.id, payload: Buffer.from(entry.payload), deliveries: 1 });
    }
    return delivered;
  }

  private serveWaiters(stream: Stream): void {
    if (stream.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of stream.waiters) {
      const entries = this.deliverNew(stream, waiter.group, waiter.consumer, waiter.count);
      if (entries.length === 0) {
        still.push(waiter);
        continue;
      }
      clearTimeout(waiter.timer);
      waiter.resolve(entries);
    }
    stream.waiters = still;
  }

  private removeWaiter(stream: Stream, waiter: Waiter): void {
    const index = stream.waiters.indexOf(waiter);
    if (index !== -1) stream.waiters.splice(index, 1);
  }

  private find(stream: Stream, id: Id): StoredEntry | undefined {
    const index = this.firstIndexAtLeast(stream, id);
    const entry = stream.entries[index];
    return entry !== undefined && !entry.deleted && compare(entry, id) === 0 ? entry : undefined;
  }

  private deleteOne(stream: Stream, id: Id): number {
    const entry = this.find(stream, id);
    if (entry === undefined) return 0;
    entry.deleted = true;
    stream.live -= 1;
    stream.tombstones += 1;
    if (stream.tombstones > COMPACT_MIN_TOMBSTONES && stream.tombstones > stream.live) {
      stream.entries = stream.entries.filter((kept) => !kept.deleted);
      stream.tombstones = 0;
    }
    return 1;
  }

  /** Index of the first entry (deleted or not) with an id >= `id`. */
  private firstIndexAtLeast(stream: Stream, id: Id): number {
    let low = 0;
    let high = stream.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compare(stream.entries[middle], id) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Index of the first entry with an id > `id`. */
  private firstIndexAbove(stream: Stream, id: Id): number {
    let low = 0;
    let high = stream.entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compare(stream.entries[middle], id) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function readId(ms: unknown, seq: unknown, where: string): Id {
  if (!isCount(ms) || !isCount(seq)) throw new Error(`${where}: id parts must be non-negative integers`);
  return { ms, seq };
}

function readStream(item: unknown, index: number): [string, Stream] {
  const where = `stream #${index}`;
  if (!Array.isArray(item) || item.length !== 5) throw new Error(`${where}: expected [name, lastMs, lastSeq, entries, groups]`);
  const [name, lastMs, lastSeq, rawEntries, rawGroups] = item as unknown[];
  if (typeof name !== 'string') throw new Error(`${where}: name must be a string`);
  const last = readId(lastMs, lastSeq, `stream "${name}"`);
  if (!Array.isArray(rawEntries) || !Array.isArray(rawGroups)) throw new Error(`stream "${name}": entries and groups must be lists`);
  const entries: StoredEntry[] = [];
  for (const raw of rawEntries as unknown[]) {
    if (!Array.isArray(raw) || raw.length !== 3 || !(raw[2] instanceof Uint8Array)) throw new Error(`stream "${name}": an entry must be [ms, seq, bytes]`);
    const id = readId(raw[0], raw[1], `stream "${name}"`);
    const previous = entries[entries.length - 1];
    if ((previous !== undefined && compare(previous, id) >= 0) || compare(id, last) > 0) throw new Error(`stream "${name}": entry ids out of order`);
    entries.push({ ...id, id: format(id), payload: Buffer.from(raw[2]), deleted: false });
  }
  const groups = new Map<string, Group>();
  for (const raw of rawGroups as unknown[]) {
    if (!Array.isArray(raw) || raw.length !== 4 || typeof raw[0] !== 'string' || !Array.isArray(raw[3])) {
      throw new Error(`stream "${name}": a group must be [name, lastMs, lastSeq, pending]`);
    }
    const groupLast = readId(raw[1], raw[2], `group "${raw[0]}"`);
    const pending: PendingEntry[] = [];
    for (const rawPending of raw[3] as unknown[]) {
      if (!Array.isArray(rawPending) || rawPending.length !== 5 || typeof rawPending[2] !== 'string' || !isCount(rawPending[3]) || !isCount(rawPending[4])) {
        throw new Error(`group "${raw[0]}": a pending entry must be [ms, seq, consumer, deliveries, deliveredAt]`);
      }
      const id = readId(rawPending[0], rawPending[1], `group "${raw[0]}"`);
      pending.push({ ...id, consumer: rawPending[2], deliveries: rawPending[3], deliveredAt: rawPending[4] });
    }
    pending.sort(compare);
    groups.set(raw[0], { last: groupLast, pending: new Map(pending.map((entry) => [format(entry), entry])) });
  }
  return [name, { entries, live: entries.length, tombstones: 0, last, groups, waiters: [] }];
}
