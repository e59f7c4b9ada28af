/**
 * The Lua scripts of the lock store (RedisMutex's steps on Redis). `P` itself is a plain `SET key value NX PX`
 * (no script); everything that must compare the owner's token and then act
 * runs here, atomically.
 *
 * The lock value is `<token>|<fence>|<takenAt>|<timeoutMs>|<nodeId>` (see
 * src/mutex/record.ts). It is written once, when the lock is taken, and never changed
 * (an extension only moves the expiry); the token makes it unique, so the
 * holder recognises its own lock by comparing the whole value.
 */
import { LuaScript } from './LuaScript';

/** Takes a free mutex and draws its fencing token, or reports how long the current holder still has. */
export const acquireScript = new LuaScript<[number, number]>(
  'mutexAcquire',
  2,
  `-- KEYS[1] lock key (string value, expires), KEYS[2] fence counter (never expires)
-- ARGV[1] owner token, ARGV[2] takenAt (ms since epoch, holder's clock), ARGV[3] timeout ms, ARGV[4] nodeId
-- Returns {1, fence} when taken; {0, remaining ms of the holder (PTTL)} when held by someone
local lock = KEYS[1]
local token, takenAt, timeout, nodeId = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', lock) == 1 then
  return {0, redis.call('PTTL', lock)}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', lock, token .. '|' .. string.format('%d', fence) .. '|' .. takenAt .. '|' .. timeout .. '|' .. nodeId, 'PX', timeout)
return {1, fence}`,
);

/** Deletes the lock only when it still holds the caller's value, hence token (V). */
export const releaseScript = new LuaScript<number>(
  'mutexRelease',
  1,
  `-- KEYS[1] lock key
-- ARGV[1] the holder's lock value (starts with its unique token)
-- Returns 1 when released, 0 when the lock is free or held by someone else
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`,
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
