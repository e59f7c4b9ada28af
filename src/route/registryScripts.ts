import { LuaScript } from './LuaScript';

/** Expiry is scored with Redis's own clock (TIME), so instances with skewed clocks agree on who is live. */
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Announces or refreshes an instance and drops the expired ones. With
 * ARGV[4] `exclusive` (what connect() runs) it first checks that no other
 * process holds the id: a live announcement with other bytes (another host,
 * pid or startedAt) is left alone and returned with the ms it has left, and
 * nothing is written. Check and write are one step, so two processes
 * connecting under one id at once cannot both pass. Without ARGV[4] (the
 * heartbeat, foreign clients) it announces unconditionally, as before.
 */
export const announceScript = new LuaScript<number | [Buffer, number]>(
  'announce',
  2,
  `-- KEYS[1] instance set (zset: id -> expiry ms), KEYS[2] announcements (hash: id -> bytes)
-- ARGV[1] instance id, ARGV[2] announcement, ARGV[3] ttl ms, ARGV[4] optional mode: 'exclusive'
-- returns now; in exclusive mode, when another live announcement holds the id: {that announcement, ms it has left}
${NOW_MS}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(expired))
end
if ARGV[4] == 'exclusive' then
  local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
  local held = redis.call('HGET', KEYS[2], ARGV[1])
  if expires and held and held ~= ARGV[2] then
    return {held, tonumber(expires) - now}
  end
elseif ARGV[4] then
  return redis.error_reply('ERR announce: unknown mode ' .. ARGV[4] .. " (only 'exclusive')")
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return now`,
);

/** Removes an instance at once (graceful close). */
export const withdrawScript = new LuaScript<number>(
  'withdraw',
  2,
  `-- KEYS[1] instance set, KEYS[2] announcements; ARGV[1] instance id
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])`,
);

/** Lists the announcements of the live instances. */
export const liveInstancesScript = new LuaScript<Buffer[]>(
  'liveInstances',
  2,
  `-- KEYS[1] instance set, KEYS[2] announcements; no ARGV
${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
if #ids == 0 then return {} end
local found = redis.call('HMGET', KEYS[2], unpack(ids))
local live = {}
for i = 1, #found do
  if found[i] then live[#live + 1] = found[i] end
end
return live`,
  true,
);
