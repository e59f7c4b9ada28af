/**
 * The Lua scripts of RedisMutex. `P` itself is a plain `SET key value NX PX`
 * (no script); everything that must compare the owner's token and then act
 * runs here, atomically.
 *
 * The lock value is `<token>|<fence>|<takenAt>|<timeoutMs>|<nodeId>` (see
 * record.ts). It is written once, when the lock is taken or handed over, and
 * never changed (an extension only moves the expiry); the token makes it
 * unique, so the holder recognises its own lock by comparing the whole value.
 *
 * Waiting acquirers queue in arrival order: a sorted set `queue` of entries
 * `<token>|<timeoutMs>|<nodeId>` scored by Redis's clock in microseconds at
 * their first arrival, and a hash `waiters` from each entry to
 * `<aliveUntil ms>|<wake channel>`. Whoever frees the lock (a release, a
 * waiter that leaves while it was handed the lock, or an attempt that finds
 * an expired lock) hands it at once to the first live waiter: the lock is set
 * to that waiter's value, with a fresh fence, and the value is PUBLISHed as
 * `<mutexId>|<value>` on the waiter's wake channel (a release answers a
 * waiter on the releasing RedisMutex's own channel in its reply instead: no
 * notice, the releaser tells it). A waiter is live while
 * its `aliveUntil` (renewed by each of its attempts) has not passed and its
 * wake channel has a subscriber (a crashed process's connection is gone, so
 * it is skipped at once). The wake channel carries the lock's hash tag
 * (`...wake.{mutex:<id>}.<waiter>`, see vars/names.ts): it is a shard channel
 * of the lock's slot, counted with PUBSUB SHARDNUMSUB (on a cluster exact:
 * its subscribers sit on this master; a classic count there would see this
 * node's subscribers only) and told with SPUBLISH, on one server as on a cluster.
 */
import { LuaScript } from '../route/LuaScript';

/** Lua shared by the scripts that can free a lock: hands it to the first live waiter. */
const HAND_OVER = `
-- Hands the free lock KEYS[1] to the first live waiter of KEYS[3]/KEYS[4], drawing a fence from KEYS[2].
-- skip: an entry not to notify (the caller itself); own: the caller's wake channel ('' for none), whose
-- waiter the caller tells itself. Returns the entry handed to (false for none) and, when it was not
-- notified, the lock value written.
local function handOver(mutexId, skip, own)
  local nowMs
  for _ = 1, 32 do
    local head = redis.call('ZPOPMIN', KEYS[3])[1]
    if not head then return false end
    if not nowMs then
      local now = redis.call('TIME')
      nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    end
    local info = redis.call('HGET', KEYS[4], head)
    redis.call('HDEL', KEYS[4], head)
    -- a member or waiters value not written by the protocol (no '|', a timeout that is no whole ms) is dropped like a dead waiter
    local waiterToken, leaseMs = string.match(head, '^([^|]+)|([1-9]%d*)|')
    local bar = info and string.find(info, '|', 1, true)
    local aliveUntil = bar and tonumber(string.sub(info, 1, bar - 1))
    if waiterToken and tonumber(leaseMs) <= 2147483647 and aliveUntil then
      local channel = string.sub(info, bar + 1)
      local quiet = head == skip or channel == own
      if aliveUntil >= nowMs and (quiet or redis.call('PUBSUB', 'SHARDNUMSUB', channel)[2] > 0) then
        local fence = redis.call('INCR', KEYS[2])
        local value = waiterToken .. '|' .. string.format('%d', fence) .. '|' .. string.format('%d', nowMs) .. '|' .. string.sub(head, #waiterToken + 2)
        -- told before the lock is written (notices leave after the script): a refused notice stops it with the lock untouched
        if not quiet then redis.call('SPUBLISH', channel, mutexId .. '|' .. value) end
        redis.call('SET', KEYS[1], value, 'PX', leaseMs)
        if quiet then return head, value end
        return head
      end
    end
  end
  return false
end
`;

/**
 * A fenced attempt that may queue: takes a free lock when nobody waits, hands
 * it to the first live waiter otherwise, and (when asked to wait) queues the
 * caller or renews its place.
 */
export const acquireScript = new LuaScript<[number, number | string]>(
  'mutexAcquire',
  4,
  `-- KEYS[1] lock key, KEYS[2] fence counter, KEYS[3] queue (sorted set), KEYS[4] waiters (hash)
-- ARGV[1] owner token, ARGV[2] takenAt (ms, caller's clock), ARGV[3] timeout ms, ARGV[4] nodeId,
-- ARGV[5] mutexId, ARGV[6] wake channel ('' = do not queue), ARGV[7] ms the caller stays live without a new attempt
-- Returns {1, fence} when taken now; {2, value} when the lock was handed to this token; {0, PTTL of the holder} otherwise
${HAND_OVER}
local token, timeout, nodeId, channel = ARGV[1], ARGV[3], ARGV[4], ARGV[6]
local entry = token .. '|' .. timeout .. '|' .. nodeId
local function enqueue()
  if channel == '' then return end
  local now = redis.call('TIME')
  local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('ZADD', KEYS[3], 'NX', tonumber(now[1]) * 1000000 + tonumber(now[2]), entry)
  redis.call('HSET', KEYS[4], entry, string.format('%d', nowMs + tonumber(ARGV[7])) .. '|' .. channel)
  for _, key in ipairs({KEYS[3], KEYS[4]}) do
    if redis.call('PTTL', key) < tonumber(ARGV[7]) then redis.call('PEXPIRE', key, ARGV[7]) end
  end
end
local value = redis.call('GET', KEYS[1])
if value then
  if string.sub(value, 1, #token + 1) == token .. '|' then return {2, value} end
  enqueue()
  return {0, redis.call('PTTL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  enqueue()
  local handed, mine = handOver(ARGV[5], entry, '')
  if handed == entry then return {2, mine} end
  if handed then return {0, redis.call('PTTL', KEYS[1])} end
  redis.call('ZREM', KEYS[3], entry)
  redis.call('HDEL', KEYS[4], entry)
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. '|' .. string.format('%d', fence) .. '|' .. ARGV[2] .. '|' .. timeout .. '|' .. nodeId, 'PX', timeout)
return {1, fence}`,
);

/**
 * Deletes the lock only when it still holds the caller's value, hence token
 * (V), and hands it to the first live waiter; a waiter of the caller's own
 * RedisMutex is answered in the reply rather than notified.
 */
export const releaseScript = new LuaScript<number | string>(
  'mutexRelease',
  4,
  `-- KEYS[1] lock key, KEYS[2] fence counter, KEYS[3] queue, KEYS[4] waiters
-- ARGV[1] the holder's lock value (starts with its unique token), ARGV[2] mutexId,
-- ARGV[3] (optional) the caller's wake channel: a waiter listening there is not notified
-- Returns 0 when the lock is free or held by someone else; when released, 1, or the lock value
-- written for a waiter on ARGV[3] (handed to it, and for the caller to tell)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
-- nobody waits: released before the hand-over function is even defined (the uncontended V)
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
${HAND_OVER}
local handed, value = handOver(ARGV[2], false, ARGV[3] or '')
if not handed then redis.call('DEL', KEYS[1]) end
return value or 1`,
);

/** A waiter gives up: leaves the queue, and passes the lock on if it was handed to it meanwhile. */
export const leaveScript = new LuaScript<number>(
  'mutexLeave',
  4,
  `-- KEYS[1] lock key, KEYS[2] fence counter, KEYS[3] queue, KEYS[4] waiters
-- ARGV[1] the waiter's entry (<token>|<timeoutMs>|<nodeId>), ARGV[2] its token, ARGV[3] mutexId
-- Returns 1 when the lock had been handed to it (and is now passed on), 0 otherwise
${HAND_OVER}
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value or string.sub(value, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then return 0 end
if not handOver(ARGV[3], false, '') then redis.call('DEL', KEYS[1]) end
return 1`,
);

/** Moves the lock's expiry to now + timeout only when it still holds the caller's value; never re-creates an expired lock. */
export const extendScript = new LuaScript<number>(
  'mutexExtend',
  1,
  `-- KEYS[1] lock key
-- ARGV[1] the holder's lock value (starts with its unique token), ARGV[2] new timeout ms
-- Returns 1 when extended, 0 when the lock is free or held by someone else
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`,
);

/** Reads a lock's value and remaining time in one step. */
export const inspectScript = new LuaScript<[string, number] | null>(
  'mutexInspect',
  1,
  `-- KEYS[1] lock key; no ARGV
-- Returns {value, PTTL} when held, nil when free
local value = redis.call('GET', KEYS[1])
if not value then return false end
return {value, redis.call('PTTL', KEYS[1])}`,
);
