import type Redis from 'ioredis';
import { LuaScript } from './LuaScript';
import type { AckOptions, ClaimState, DeadLetterStore, QueryClaimRequest, RenewResult, StreamEntry, StreamGroupInfo, StreamInfo, StreamStore } from './StreamStore';

/** The single field every entry carries. */
const FIELD = 'm';

const CLAIM_STATES: readonly ClaimState[] = ['claimed', 'done', 'held-elsewhere', 'held-here'];

/**
 * Per-query claims: one step for a batch, so two consumers (or two copies of
 * one query in different entries) cannot both take a query.
 */
const claimQueriesScript = new LuaScript<number[]>(
  'claimQueries',
  -1,
  `-- KEYS[1..d] completion-record hashes; KEYS[d+1..] one claim key per query
-- ARGV[1] d, ARGV[2] holder, ARGV[3] ttl ms, then per query: query id, entry id
-- returns per query: 0 claimed, 1 done, 2 held from another entry (or twice in this call), 3 held by another consumer from this entry
local d = tonumber(ARGV[1])
local holder = ARGV[2]
local states = {}
local seen = {}
for i = d + 1, #KEYS do
  local queryId = ARGV[2 * (i - d) + 2]
  local entryId = ARGV[2 * (i - d) + 3]
  local state = 0
  for k = 1, d do
    if redis.call('HEXISTS', KEYS[k], queryId) == 1 then state = 1; break end
  end
  if state == 0 and seen[KEYS[i]] then state = 2 end
  if state == 0 then
    local claim = redis.call('GET', KEYS[i])
    if claim then
      local space = string.find(claim, ' ', 1, true)
      local claimEntry = string.sub(claim, 1, space - 1)
      local claimHolder = string.sub(claim, space + 1)
      if claimEntry ~= entryId then state = 2 elseif claimHolder ~= holder then state = 3 end
    end
  end
  if state == 0 then redis.call('SET', KEYS[i], entryId .. ' ' .. holder, 'PX', ARGV[3]) end
  seen[KEYS[i]] = true
  states[#states + 1] = state
end
return states`,
);

/** Keeps a live consumer's entries and claims: another consumer takes them only once their holder stopped renewing. */
const renewScript = new LuaScript<[number[], number[]]>(
  'renewClaims',
  -1,
  `-- KEYS[1] stream; KEYS[2..] claim keys
-- ARGV[1] group, ARGV[2] holder, ARGV[3] ttl ms, ARGV[4..] pending entry ids
-- returns { per entry 1 still held (idle reset, no delivery counted) or 0, per claim key 1 still held (ttl reset) or 0 }
local entries = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    entries[#entries + 1] = 1
  else
    entries[#entries + 1] = 0
  end
end
local claims = {}
local suffix = ' ' .. ARGV[2]
for i = 2, #KEYS do
  local claim = redis.call('GET', KEYS[i])
  if claim and string.sub(claim, -#suffix) == suffix then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
    claims[#claims + 1] = 1
  else
    claims[#claims + 1] = 0
  end
end
return { entries, claims }`,
);

const releaseScript = new LuaScript<number>(
  'releaseClaims',
  -1,
  `-- KEYS[1..] claim keys; ARGV[1] holder
-- deletes the claims the holder still holds; returns how many
local suffix = ' ' .. ARGV[1]
local released = 0
for i = 1, #KEYS do
  local claim = redis.call('GET', KEYS[i])
  if claim and string.sub(claim, -#suffix) == suffix then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released`,
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

function pairs(flat: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = flat[i + 1];
  return record;
}

/**
 * The Redis side of {@link StreamStore}. Commands go through the route's
 * command connection; blocking reads each take a connection of their own from
 * a small pool, so a read waiting for entries never delays other commands.
 */
export class RedisStreamStore implements StreamStore {
  private readonly idle: Redis[] = [];
  private readonly all = new Set<Redis>();
  private closed = false;

  constructor(private readonly commands: Redis) {}

  async streamAdd(stream: string, payload: Buffer): Promise<string> {
    return (await this.commands.xadd(stream, '*', FIELD, payload)) as string;
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
    if (ids.length === 0 && (done === undefined || done.ids.length === 0) && (options.releaseClaims?.length ?? 0) === 0) return;
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
    if (options.releaseClaims !== undefined && options.releaseClaims.length > 0) transaction.del(...options.releaseClaims);
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

  async claimQueries(doneKeys: string[], requests: QueryClaimRequest[], holder: string, ttlMs: number): Promise<ClaimState[]> {
    if (requests.length === 0) return [];
    const keys = [...doneKeys, ...requests.map((r) => r.key)];
    const args: Array<string | number> = [doneKeys.length, holder, ttlMs];
    for (const request of requests) args.push(request.queryId, request.entryId);
    const states = await claimQueriesScript.run(this.commands, keys, args);
    return states.map((state) => CLAIM_STATES[state]);
  }

  async renewClaims(stream: string, group: string, holder: string, entryIds: string[], claimKeys: string[], ttlMs: number): Promise<RenewResult> {
    if (entryIds.length === 0 && claimKeys.length === 0) return { entries: [], claims: [] };
    const [entries, claims] = await renewScript.run(this.commands, [stream, ...claimKeys], [group, holder, ttlMs, ...entryIds]);
    return { entries: entries.map((flag) => flag === 1), claims: claims.map((flag) => flag === 1) };
  }

  async releaseClaims(claimKeys: string[], holder: string): Promise<void> {
    if (claimKeys.length > 0) await releaseScript.run(this.commands, claimKeys, [holder]);
  }

  /** Ends the blocking connections (a read in progress rejects). */
  close(): void {
    this.closed = true;
    for (const connection of this.all) connection.disconnect();
    this.all.clear();
    this.idle.length = 0;
  }

  private async claim(stream: string, group: string, consumer: string, minIdleMs: number, count: number, owner: string): Promise<StreamEntry[]> {
    const claimed = await claimScript.runBuffer(this.commands, [stream], [group, consumer, minIdleMs, count, owner]);
    return claimed.map(([id, fields, deliveries]) => ({ id: id.toString(), payload: fieldValue(fields), deliveries: Number(deliveries) }));
  }

  private borrow(): Redis {
    if (this.closed) throw new Error('the route is closed');
    const reused = this.idle.pop();
    if (reused !== undefined) return reused;
    const created = this.commands.duplicate();
    created.on('error', () => undefined); // reported through the command connection; a blocked read rejects on its own
    this.all.add(created);
    return created;
  }

  private giveBack(connection: Redis): void {
    if (this.closed) connection.disconnect();
    else this.idle.push(connection);
  }
}
