import type { Cluster } from 'ioredis';
import { IntracomError } from '../errors/IntracomError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { cut, describeConnection, endableCluster, isCluster, type RedisCommands } from './connection';
import { redisFailure } from './redisFailure';
import type { DurabilityOptions } from './RouteOptions';
import { LuaScript } from './LuaScript';
import type { AckOptions, ClaimState, ConsumeStep, ConsumeStepResult, DeadLetterStore, EntryQueries, RenewResult, StreamEntry, StreamGroupInfo, StreamInfo, StreamStore } from './StreamStore';

/** The single field every entry carries. */
const FIELD = 'm';

const CLAIM_STATES: readonly ClaimState[] = ['claimed', 'done', 'held-elsewhere', 'held-here'];

/**
 * HMGET and HSET over a whole batch in a few calls (each `redis.call` costs
 * about as much as the work of one field), in chunks that `unpack` can take.
 */
const LUA_BATCH_HELPERS = `local function hmget(key, fields)
  local out = {}
  for s = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, s, math.min(s + 999, #fields)))
    for j = 1, #part do out[s + j - 1] = part[j] end
  end
  return out
end
local function hset(key, pairs)
  for s = 1, #pairs, 1000 do redis.call('HSET', key, unpack(pairs, s, math.min(s + 999, #pairs))) end
end
local function nowMs()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end`;

/**
 * Per-query claims: one step for a batch, so two consumers (or two copies of
 * one query in different entries) cannot both take a query. Claims live in
 * one hash per consumer scope (field: query id; value: `<expires ms> <entry
 * id> <holder>`, by Redis's clock) rather than a key each: a field costs
 * Redis less than a key with a TTL.
 *
 * Shared by {@link claimQueriesScript} and {@link consumeStepScript}: claims the queries listed in ARGV from index `from` on (per entry: entry
 * id, n, n query ids) for `holder`, unless a completion record under
 * `doneKeys` or a live claim in `claims` holds them. Returns per query
 * 0 claimed, 1 done, 2 held from another entry (or twice in this call),
 * 3 held by another consumer from this entry.
 */
const LUA_CLAIM = `local function claimQueries(doneKeys, claims, holder, ttl, from)
  local ids, entryOf = {}, {}
  local i = from
  while i <= #ARGV do
    local last = i + 1 + tonumber(ARGV[i + 1])
    for q = i + 2, last do
      ids[#ids + 1] = ARGV[q]
      entryOf[#ids] = ARGV[i]
    end
    i = last + 1
  end
  if #ids == 0 then return {} end
  local states = {}
  for k = 1, #doneKeys do
    -- a bucket not written yet (the one before, mostly) costs one EXISTS, not a field each
    if redis.call('EXISTS', doneKeys[k]) == 1 then
      local found = hmget(doneKeys[k], ids)
      for j = 1, #ids do if found[j] then states[j] = 1 end end
    end
  end
  local current = hmget(claims, ids)
  local now = nowMs()
  local expires = string.format('%.0f', now + tonumber(ttl))
  -- one claim value per entry, shared by its queries
  local values, suffix = {}, ' ' .. holder
  local seen, sets = {}, {}
  for j = 1, #ids do
    local queryId = ids[j]
    local state = states[j] or 0
    if state == 0 and seen[queryId] then state = 2 end
    local claim = current[j]
    if state == 0 and claim then
      -- a value not of the form '<expires> <entry> <holder>' holds nothing: the query is claimed over it
      local expiresAt, entry, by = string.match(claim, '^(%d+) (%S+) (.+)$')
      if expiresAt and tonumber(expiresAt) > now then
        if entry ~= entryOf[j] then state = 2 elseif by ~= holder then state = 3 end
      end
    end
    if state == 0 then
      sets[#sets + 1] = queryId
      local value = values[entryOf[j]]
      if not value then
        value = expires .. ' ' .. entryOf[j] .. suffix
        values[entryOf[j]] = value
      end
      sets[#sets + 1] = value
    end
    seen[queryId] = true
    states[j] = state
  end
  hset(claims, sets)
  -- the hash outlives its last claim by 2 ttl: fields a crashed holder left do not stay for good
  if #sets > 0 then redis.call('PEXPIRE', claims, 2 * tonumber(ttl)) end
  return states
end`;

const claimQueriesScript = new LuaScript<number[]>(
  'claimQueries',
  -1,
  `-- KEYS[1..d] completion-record hashes; KEYS[d+1] claims hash
-- ARGV[1] d, ARGV[2] holder, ARGV[3] ttl ms, then per entry: entry id, n, n query ids
-- returns per query: 0 claimed, 1 done, 2 held from another entry (or twice in this call), 3 held by another consumer from this entry
${LUA_BATCH_HELPERS}
${LUA_CLAIM}
local d = tonumber(ARGV[1])
local doneKeys = {}
for k = 1, d do doneKeys[k] = KEYS[k] end
return claimQueries(doneKeys, KEYS[d + 1], ARGV[2], ARGV[3], 4)`,
);

/**
 * A consumer's whole round trip under load, in one step: acknowledges the
 * entries of the last batch and records its completions (deleting their
 * claims, as {@link RedisStreamStore.streamAck} does), claims the queries of
 * the entries read by the previous step, and reads the next entries without
 * blocking. A group found gone by the read does not undo the rest.
 */
const consumeStepScript = new LuaScript<[number[], Array<[Buffer, Buffer[]]> | number, number]>(
  'consumeStep',
  4,
  `-- KEYS[1] stream, KEYS[2] claims hash, KEYS[3] completion records of the current bucket (written, checked), KEYS[4] of the previous bucket (checked)
-- ARGV[1] group, ARGV[2] consumer (the claims' holder), ARGV[3] claim ttl ms, ARGV[4] records' ttl ms, ARGV[5] entries to read (0: none),
-- ARGV[6] a, ARGV[7] c, ARGV[8..7+a] entry ids to acknowledge, then c completed query ids, then the queries to claim: per entry, entry id, n, n query ids
-- returns { per query to claim 0 claimed, 1 done, 2 held from another entry, 3 held by another consumer from this entry; the entries read; 1 when the group is gone }
${LUA_BATCH_HELPERS}
${LUA_CLAIM}
local a, c = tonumber(ARGV[6]), tonumber(ARGV[7])
for s = 8, 7 + a, 1000 do redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, s, math.min(s + 999, 7 + a))) end
if c > 0 then
  local fields = {}
  for i = 8 + a, 7 + a + c do
    fields[#fields + 1] = ARGV[i]
    fields[#fields + 1] = '1'
  end
  hset(KEYS[3], fields)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  -- the records above now answer for these queries
  for s = 8 + a, 7 + a + c, 1000 do redis.call('HDEL', KEYS[2], unpack(ARGV, s, math.min(s + 999, 7 + a + c))) end
end
local states = claimQueries({ KEYS[3], KEYS[4] }, KEYS[2], ARGV[2], ARGV[3], 8 + a + c)
local entries, gone = {}, 0
if tonumber(ARGV[5]) > 0 then
  local read = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[5], 'STREAMS', KEYS[1], '>')
  if type(read) == 'table' and read.err then
    if not string.find(read.err, 'NOGROUP', 1, true) then return redis.error_reply(read.err) end
    gone = 1
  elseif read then
    entries = read[1][2]
  end
end
return { states, entries, gone }`,
);

/**
 * Keeps a live consumer's entries and claims: another consumer takes them only
 * once their holder stopped renewing. Claims live outside the group, so they
 * are renewed even when the group is gone (XGROUP DESTROY, a Redis restarted
 * without persistence); an entry the holder still has a live claim from is
 * kept too, and taken back (XCLAIM JUSTID, no delivery counted) when a
 * recreated group delivered it to another consumer meanwhile.
 */
const renewScript = new LuaScript<[number[], number[], number]>(
  'renewClaims',
  2,
  `-- KEYS[1] stream, KEYS[2] claims hash
-- ARGV[1] group, ARGV[2] holder, ARGV[3] ttl ms, ARGV[4] n, ARGV[5..4+n] pending entry ids, then query ids
-- returns { per entry 1 still held (idle reset, no delivery counted) or 0, per query 1 still held (claim renewed) or 0, 1 when the group is gone }
${LUA_BATCH_HELPERS}
local holder = ARGV[2]
local n = tonumber(ARGV[4])
local ids = {}
for i = 5 + n, #ARGV do ids[#ids + 1] = ARGV[i] end
local current = #ids > 0 and hmget(KEYS[2], ids) or {}
local held, sets, claimedFrom = {}, {}, {}
local suffix = ' ' .. holder
for j = 1, #ids do
  local claim = current[j]
  if claim and string.sub(claim, -#suffix) == suffix then
    local a = string.find(claim, ' ', 1, true)
    claimedFrom[string.sub(claim, a + 1, #claim - #suffix)] = true
    held[j] = 1
  else
    held[j] = 0
  end
end
local entries, gone = {}, 0
for i = 5, 4 + n do
  local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if type(pending) == 'table' and pending.err then
    if not string.find(pending.err, 'NOGROUP', 1, true) then return redis.error_reply(pending.err) end
    gone = 1
  end
  local mine = gone == 0 and pending[1] and pending[1][2] == holder
  if mine or claimedFrom[ARGV[i]] then
    if gone == 0 and pending[1] then redis.call('XCLAIM', KEYS[1], ARGV[1], holder, 0, ARGV[i], 'JUSTID') end
    entries[#entries + 1] = 1
  else
    entries[#entries + 1] = 0
  end
end
if #ids > 0 then
  local expires = string.format('%.0f', nowMs() + tonumber(ARGV[3]))
  for j = 1, #ids do
    if held[j] == 1 then
      local claim = current[j]
      sets[#sets + 1] = ids[j]
      local space = string.find(claim, ' ', 1, true)
      sets[#sets + 1] = expires .. string.sub(claim, space)
    end
  end
  hset(KEYS[2], sets)
  if #sets > 0 then redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[3])) end
end
return { entries, held, gone }`,
);

const releaseScript = new LuaScript<number>(
  'releaseClaims',
  1,
  `-- KEYS[1] claims hash; ARGV[1] holder, ARGV[2..] query ids
-- deletes the claims the holder still holds; returns how many
local suffix = ' ' .. ARGV[1]
local released = 0
for i = 2, #ARGV do
  local claim = redis.call('HGET', KEYS[1], ARGV[i])
  if claim and string.sub(claim, -#suffix) == suffix then
    redis.call('HDEL', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released`,
);

/**
 * One instance per service trims its streams and removes the groups of gone
 * instances (whoever holds the lease), so a maintenance round costs the
 * other instances one call each instead of a look at every group.
 */
const maintenanceLeaseScript = new LuaScript<number>(
  'queueMaintenanceLease',
  2,
  `-- KEYS[1] the instance's seen key, KEYS[2] the service's maintenance lease
-- ARGV[1] seen ms, ARGV[2] holder (instance id), ARGV[3] lease ms
-- marks the instance live, then takes the lease when free or renews it when held by ARGV[2]; returns 1 when ARGV[2] holds it
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`,
);

const deadLetterScript = new LuaScript<string>(
  'streamDeadLetter',
  3,
  `-- KEYS[1] stream, KEYS[2] dead-letter stream, KEYS[3] counter of dropped dead letters
-- ARGV[1] group, ARGV[2] entry id ('' for none), ARGV[3] dead-letter payload, ARGV[4] '1' to delete the entry, ARGV[5] most dead letters kept
local deadId = redis.call('XADD', KEYS[2], '*', '${FIELD}', ARGV[3])
local dropped = redis.call('XTRIM', KEYS[2], 'MAXLEN', ARGV[5])
if dropped > 0 then redis.call('INCRBY', KEYS[3], dropped) end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  if ARGV[4] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
end
return deadId`,
);

/**
 * Claims pending entries and reports their delivery counts, which XAUTOCLAIM
 * does not return: XPENDING (with IDLE, optionally one consumer's) gives ids
 * and counts, XCLAIM moves each to the claimer and counts the delivery.
 * Entries deleted meanwhile are skipped (Redis drops them from the PEL).
 */
const claimScript = new LuaScript<Array<[Buffer, Buffer[], number]>>(
  'streamClaim',
  1,
  `-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] claiming consumer, ARGV[3] min idle ms, ARGV[4] count, ARGV[5] only this consumer's entries ('' for any)
local pending
if ARGV[5] == '' then
  pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4])
else
  pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', ARGV[4], ARGV[5])
end
local claimed = {}
for _, entry in ipairs(pending) do
  local got = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], entry[1])
  if got[1] then claimed[#claimed + 1] = { got[1][1], got[1][2], entry[4] + 1 } end
end
return claimed`,
);

function fieldValue(fields: Buffer[]): Buffer {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i].toString() === FIELD) return fields[i + 1];
  return Buffer.alloc(0); // an entry written by someone else without our field: the layer above dead-letters it
}

/** Appends the claim list of the claim scripts (per entry: entry id, n, n query ids) to `args`; returns how many queries. */
function appendClaims(args: Array<string | number>, entries: EntryQueries[]): number {
  let queries = 0;
  for (const { entryId, queryIds } of entries) {
    if (queryIds.length === 0) continue;
    args.push(entryId, queryIds.length);
    for (const queryId of queryIds) args.push(queryId);
    queries += queryIds.length;
  }
  return queries;
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

/**
 * How many appends may wait for replica acknowledgements (`WAIT`, with
 * `durability.replicas`) at once, each on a pooled connection of its own
 * (on a cluster a whole Cluster, on Sentinel three sentinel connections
 * more). Further appends wait for one of them to finish, at most
 * `durability.timeoutMs`, and then fail unsent: while a replica is gone every
 * WAIT lasts its whole timeout, and a pool that grew with each send would
 * grow with the send rate for as long as the outage lasts.
 */
export const MAX_ACKNOWLEDGED_APPENDS = 8;

/** An append waiting for one of the {@link MAX_ACKNOWLEDGED_APPENDS} places. */
interface AppendWaiter {
  admit(): void;
  fail(error: Error): void;
}

/**
 * The Redis side of {@link StreamStore}. Commands go through the route's
 * command connection; blocking reads each take a connection of their own from
 * a small pool, so a read waiting for entries never delays other commands,
 * and so do appends that wait for replicas, {@link MAX_ACKNOWLEDGED_APPENDS}
 * at a time.
 */
export class RedisStreamStore implements StreamStore {
  private readonly idle: RedisCommands[] = [];
  private readonly all = new Set<RedisCommands>();
  private closed = false;
  /** Appends holding a pooled connection for their WAIT. */
  private acknowledgedAppends = 0;
  /** Rejects the appends in flight when the store closes (undefined once closed). */
  private abandon: Set<() => void> | undefined = new Set();
  /** Appends waiting for a place, oldest first. */
  private readonly appendWaiters: AppendWaiter[] = [];

  constructor(
    private readonly commands: RedisCommands,
    private readonly durability: Required<DurabilityOptions> = { replicas: 0, timeoutMs: 1000 },
    /** Where Redis is, for errors. */
    private readonly target = describeConnection(commands),
  ) {}

  async streamAdd(stream: string, payload: Buffer): Promise<string> {
    try {
      return await this.append(stream, payload);
    } catch (error) {
      // a send must fail with our error: an ACL refusal, the connection dropped, or a failover was under way (MOVED, CLUSTERDOWN)
      if (error instanceof IntracomError) throw error;
      if (isCluster(this.commands) && error instanceof Error && /^(MOVED|ASK) /.test(error.message)) {
        // on a cluster a redirection is a slot on the move, not a wrong kind of server
        throw new RedisUnavailableError(`append to ${stream}`, `its slot is moving (${error.message}) and did not settle within ${this.durability.timeoutMs} ms (durability.timeoutMs)`, { cause: error, applied: false });
      }
      const typed = redisFailure(`append to ${stream}`, error, this.target);
      // a refusal (ACL, topology, "not now") is known not applied; otherwise say that sending again is safe
      if (typed instanceof IntracomError && !(typed instanceof RedisUnavailableError && typed.applied === undefined)) throw typed;
      const reason = error instanceof Error ? error.message : String(error);
      throw new RedisUnavailableError(`append to ${stream}`, `${reason}; sending again is safe (the queryId is deduplicated)`, { cause: error });
    }
  }

  private async append(stream: string, payload: Buffer): Promise<string> {
    const { replicas, timeoutMs } = this.durability;
    if (replicas === 0) return (await this.commands.xadd(stream, '*', FIELD, payload)) as string;
    // WAIT holds its connection until the replicas answer: on a connection of the pool, not the shared one.
    // In one pipeline, so that on a cluster it reaches the node that took the XADD.
    await this.placeForAppend(stream);
    let connection: RedisCommands;
    try {
      connection = this.borrow();
    } catch (error) {
      this.leaveAppend();
      throw error;
    }
    try {
      const [[addError, id], [waitError, acknowledged]] = await this.appendAndWait(connection, stream, payload);
      if (addError) throw addError;
      if (waitError) throw waitError;
      if (Number(acknowledged) < replicas) {
        throw new RedisUnavailableError(
          `append to ${stream}`,
          `${String(acknowledged)} of ${replicas} replicas acknowledged entry ${String(id)} within ${timeoutMs} ms; it may survive a failover or not (sending again is safe: the queryId is deduplicated)`,
        );
      }
      return id as string;
    } finally {
      this.giveBack(connection);
      this.leaveAppend();
    }
  }

  /**
   * XADD then WAIT, in one pipeline so that on a cluster both reach the node
   * that takes the entry. ioredis follows no redirection in such a pipeline
   * (WAIT is not read-only), and a pooled Cluster learns the slot map only
   * from what it follows: after a slot of the stream moved, every append
   * would be refused with MOVED for good. So a `MOVED` makes it read the slot
   * map again, and a `MOVED` or `ASK` (the entry's slot in the middle of a
   * migration) is tried again with growing pauses within
   * `durability.timeoutMs`: the refused XADD added nothing.
   */
  private async appendAndWait(connection: RedisCommands, stream: string, payload: Buffer): Promise<[[Error | null, unknown], [Error | null, unknown]]> {
    const { replicas, timeoutMs } = this.durability;
    const giveUpAt = Date.now() + timeoutMs;
    for (let pause = 10; ; pause *= 2) {
      const replies = (await this.unlessClosed(connection.pipeline().xadd(stream, '*', FIELD, payload).call('WAIT', replicas, timeoutMs).exec(), stream)) ?? [];
      const [added = [new Error('no reply'), undefined], waited = [new Error('no reply'), undefined]] = replies;
      const redirection = isCluster(connection) && added[0] !== null ? /^(MOVED|ASK) /.exec(added[0].message)?.[1] : undefined;
      if (redirection === undefined || Date.now() + pause >= giveUpAt) return [added, waited];
      if (redirection === 'MOVED') await readSlotMap(connection as Cluster);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  /**
   * `work`, or a rejection once the store is closed: a pooled Cluster cut in
   * the middle of a failover leaves the commands it held for a retry
   * (ioredis's failover delay queue) unanswered for good, and a send must
   * never stay pending.
   */
  private unlessClosed<T>(work: Promise<T>, stream: string): Promise<T> {
    if (this.abandon === undefined) return work;
    return new Promise<T>((resolve, reject) => {
      const abandoned = (): void => reject(new RedisUnavailableError(`append to ${stream}`, 'the route closed while the append waited for Redis and its replicas; sending again is safe (the queryId is deduplicated)'));
      this.abandon?.add(abandoned);
      work.then(
        (value) => {
          this.abandon?.delete(abandoned);
          resolve(value);
        },
        (error: unknown) => {
          this.abandon?.delete(abandoned);
          reject(error);
        },
      );
    });
  }

  /** Resolves once this append may hold a pooled connection; fails it, unsent, after `durability.timeoutMs` without one. */
  private placeForAppend(stream: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the route is closed'));
    if (this.acknowledgedAppends < MAX_ACKNOWLEDGED_APPENDS) {
      this.acknowledgedAppends += 1;
      return Promise.resolve();
    }
    const { replicas, timeoutMs } = this.durability;
    return new Promise<void>((resolve, reject) => {
      const waiter: AppendWaiter = {
        admit: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.appendWaiters.splice(this.appendWaiters.indexOf(waiter), 1);
        const reason = `${MAX_ACKNOWLEDGED_APPENDS} appends were waiting for ${replicas} replica(s) to acknowledge (durability.replicas) and none ended within ${timeoutMs} ms (durability.timeoutMs); this one was not sent`;
        reject(new RedisUnavailableError(`append to ${stream}`, reason, { applied: false }));
      }, timeoutMs);
      this.appendWaiters.push(waiter);
    });
  }

  /** Hands the place of an append that ended to the oldest waiting one. */
  private leaveAppend(): void {
    const next = this.appendWaiters.shift();
    if (next !== undefined) next.admit();
    else this.acknowledgedAppends -= 1;
  }

  async streamEnsureGroup(stream: string, group: string, from: '0' | '$'): Promise<boolean> {
    try {
      await this.commands.xgroup('CREATE', stream, group, from, 'MKSTREAM');
      return true;
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('BUSYGROUP')) return false;
      throw error;
    }
  }

  async streamDestroyGroup(stream: string, group: string): Promise<void> {
    await this.commands.xgroup('DESTROY', stream, group);
  }

  async streamRead(stream: string, group: string, consumer: string, which: '>' | 'own-pending', count: number, blockMs: number): Promise<StreamEntry[]> {
    if (which === 'own-pending') return this.claim(stream, group, consumer, 0, count, consumer);
    const connection = this.borrow();
    try {
      const reply = (await connection.callBuffer('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs, 'STREAMS', stream, '>')) as unknown[] | null;
      if (reply === null || reply.length === 0) return [];
      // RESP3 (ioredis 6) answers a map, flattened to [stream, entries]; RESP2 answers [[stream, entries]]
      const entries = (Buffer.isBuffer(reply[0]) ? reply[1] : (reply[0] as unknown[])[1]) as Array<[Buffer, Buffer[]]>;
      return entries.map(([id, fields]) => ({ id: id.toString(), payload: fieldValue(fields), deliveries: 1 }));
    } finally {
      this.giveBack(connection);
    }
  }

  streamClaimIdle(stream: string, group: string, consumer: string, minIdleMs: number, count: number): Promise<StreamEntry[]> {
    return this.claim(stream, group, consumer, minIdleMs, count, '');
  }

  async streamAck(stream: string, group: string, ids: string[], options: AckOptions): Promise<void> {
    const done = options.done;
    const release = options.releaseClaims;
    if (ids.length === 0 && (done === undefined || done.ids.length === 0) && (release === undefined || release.queryIds.length === 0)) return;
    // one MULTI: atomic like a script, without a script's per-call cost
    const transaction = this.commands.multi();
    if (ids.length > 0) transaction.xack(stream, group, ...ids);
    if (ids.length > 0 && options.delete) transaction.xdel(stream, ...ids);
    if (done !== undefined && done.ids.length > 0) {
      const fields: string[] = new Array(done.ids.length * 2);
      for (let i = 0; i < done.ids.length; i++) {
        fields[2 * i] = done.ids[i];
        fields[2 * i + 1] = '1';
      }
      transaction.hset(done.key, ...fields).pexpire(done.key, done.ttlMs);
    }
    // the completion record above now answers for these queries
    if (release !== undefined && release.queryIds.length > 0) transaction.hdel(release.key, ...release.queryIds);
    const replies = await transaction.exec();
    const failed = replies?.find(([error]) => error !== null);
    if (replies === null) throw new Error('acknowledgement transaction aborted');
    if (failed) throw failed[0];
  }

  streamDeadLetter(stream: string, group: string, id: string | null, dead: DeadLetterStore, payload: Buffer, remove: boolean): Promise<string> {
    return deadLetterScript.run(this.commands, [stream, dead.stream, dead.droppedKey], [group, id ?? '', payload, remove ? '1' : '0', dead.maxLength]);
  }

  async streamRange(stream: string, start: string, end: string, count: number): Promise<Array<{ id: string; payload: Buffer }>> {
    const reply = (await this.commands.callBuffer('XRANGE', stream, start, end, 'COUNT', count)) as Array<[Buffer, Buffer[]]>;
    return reply.map(([id, fields]) => ({ id: id.toString(), payload: fieldValue(fields) }));
  }

  async streamDelete(stream: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.commands.xdel(stream, ...ids);
  }

  async streamTrimBelow(stream: string, minId: string): Promise<number> {
    return (await this.commands.call('XTRIM', stream, 'MINID', minId)) as number;
  }

  async streamInfo(stream: string): Promise<StreamInfo> {
    const [length, first] = await Promise.all([this.commands.xlen(stream), this.commands.xrange(stream, '-', '+', 'COUNT', 1)]);
    let rawGroups: unknown[][] = [];
    try {
      rawGroups = (await this.commands.call('XINFO', 'GROUPS', stream)) as unknown[][];
    } catch (error) {
      if (!(error instanceof Error && /no such key/i.test(error.message))) throw error;
    }
    const groups: StreamGroupInfo[] = await Promise.all(
      rawGroups.map(async (flat) => {
        const fields = pairs(flat);
        const name = String(fields.name);
        const pending = Number(fields.pending);
        const summary = pending > 0 ? ((await this.commands.xpending(stream, name)) as unknown[]) : undefined;
        return {
          name,
          pending,
          lag: fields.lag === null || fields.lag === undefined ? null : Number(fields.lag),
          lastDeliveredId: String(fields['last-delivered-id']),
          oldestPendingId: summary && summary[1] ? String(summary[1]) : null,
        };
      }),
    );
    return { length, firstId: first.length > 0 ? first[0][0] : null, groups };
  }

  async claimQueries(doneKeys: string[], claimsKey: string, holder: string, ttlMs: number, entries: EntryQueries[]): Promise<ClaimState[]> {
    const args: Array<string | number> = [doneKeys.length, holder, ttlMs];
    if (appendClaims(args, entries) === 0) return [];
    const states = await claimQueriesScript.run(this.commands, [...doneKeys, claimsKey], args);
    return states.map((state) => CLAIM_STATES[state]);
  }

  async consumeStep(step: ConsumeStep): Promise<ConsumeStepResult> {
    const args: Array<string | number> = [step.group, step.consumer, step.claimTtlMs, step.doneTtlMs, step.read, step.ack.length, step.completed.length];
    for (const id of step.ack) args.push(id);
    for (const queryId of step.completed) args.push(queryId);
    appendClaims(args, step.claim);
    const [states, read, gone] = await consumeStepScript.runBuffer(this.commands, [step.stream, step.claimsKey, ...step.doneKeys], args);
    return {
      states: states.map((state) => CLAIM_STATES[state]),
      entries: Array.isArray(read) ? read.map(([id, fields]) => ({ id: id.toString(), payload: fieldValue(fields), deliveries: 1 })) : [],
      groupGone: gone === 1,
    };
  }

  async renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimsKey: string, queryIds: string[], ttlMs: number): Promise<RenewResult> {
    if (entryIds.length === 0 && queryIds.length === 0) return { entries: [], claims: [], groupGone: false };
    const [entries, claims, gone] = await renewScript.run(this.commands, [stream, claimsKey], [group, holder, ttlMs, entryIds.length, ...entryIds, ...queryIds]);
    return { entries: entries.map((flag) => flag === 1), claims: claims.map((flag) => flag === 1), groupGone: gone === 1 };
  }

  async releaseClaims(claimsKey: string, queryIds: string[], holder: string): Promise<void> {
    if (queryIds.length > 0) await releaseScript.run(this.commands, [claimsKey], [holder, ...queryIds]);
  }

  async maintenanceLease(seenKey: string, seenTtlMs: number, leaseKey: string, holder: string, leaseMs: number): Promise<boolean> {
    return (await maintenanceLeaseScript.run(this.commands, [seenKey, leaseKey], [seenTtlMs, holder, leaseMs])) === 1;
  }

  /** Ends the blocking connections (a read in progress rejects; what it was handed is redelivered after the visibility timeout). */
  close(): void {
    this.closed = true;
    for (const waiter of this.appendWaiters.splice(0)) waiter.fail(new Error('the route is closed'));
    const inFlight = this.abandon;
    this.abandon = undefined;
    for (const abandoned of inFlight ?? []) abandoned();
    // cut, not closed politely: a frozen Redis would keep each socket (and the process) alive 2 s more
    for (const connection of this.all) void cut(connection);
    this.all.clear();
    this.idle.length = 0;
  }

  private async claim(stream: string, group: string, consumer: string, minIdleMs: number, count: number, owner: string): Promise<StreamEntry[]> {
    const claimed = await claimScript.runBuffer(this.commands, [stream], [group, consumer, minIdleMs, count, owner]);
    return claimed.map(([id, fields, deliveries]) => ({ id: id.toString(), payload: fieldValue(fields), deliveries: Number(deliveries) }));
  }

  private borrow(): RedisCommands {
    if (this.closed) throw new Error('the route is closed');
    // a connection ioredis ended on its own (see reviveWhenEnded) is left behind: a new one takes its place
    for (let reused = this.idle.pop(); reused !== undefined; reused = this.idle.pop()) {
      if (reused.status !== 'end') return reused;
      this.all.delete(reused);
    }
    const commands = this.commands;
    const created: RedisCommands = isCluster(commands) ? endableCluster(commands.duplicate()) : commands.duplicate();
    created.on('error', () => undefined); // reported through the command connection; a blocked read rejects on its own
    this.all.add(created);
    return created;
  }

  private giveBack(connection: RedisCommands): void {
    if (this.closed) connection.disconnect();
    else this.idle.push(connection);
  }
}

/** Reads the cluster's slot map again; resolves either way (a failed reading leaves the old map, and the append is refused again). */
function readSlotMap(cluster: Cluster): Promise<void> {
  return new Promise((resolve) => cluster.refreshSlotsCache(() => resolve()));
}
