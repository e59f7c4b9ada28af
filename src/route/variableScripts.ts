import { LuaScript } from './LuaScript';

/**
 * `increment`: INCRBY that never leaves the safe integers ±(2^53−1), the
 * integers a JavaScript number holds exactly (beyond them two increments
 * could resolve the same value, and no reader could tell). A step that would
 * leave them is undone inside the script, so nobody ever sees the value.
 * Lua numbers are doubles: a sum beyond the range rounds to at least 2^53,
 * so the comparison is exact. The new value is replied as text (GET), not
 * as an integer reply: ioredis reads integer replies near 2^53 inexactly
 * (9007199254740991 arrives as 9007199254740992), and a watcher skips a
 * value that is not a safe integer.
 */
export const incrementScript = new LuaScript<[number, string]>(
  'increment',
  1,
  `-- KEYS[1] the variable's key
-- ARGV[1] the step (a safe integer), ARGV[2] the TTL in ms, 0 for none
-- Replies {1, the new value as text}; {0, the value the step would have reached, as text}
-- when that is outside the safe integers (nothing changed); {-1, Redis's error} when the
-- stored value is not an integer INCRBY can add to (nothing changed)
local ok, value = pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1])
if not ok then
  local message = type(value) == 'table' and value.err or tostring(value)
  if string.find(message, 'not an integer', 1, true) or string.find(message, 'overflow', 1, true) or string.find(message, 'WRONGTYPE', 1, true) then
    return {-1, message}
  end
  error(value)
end
local text = redis.call('GET', KEYS[1])
if value > 9007199254740991 or value < -9007199254740991 then
  redis.call('INCRBY', KEYS[1], -tonumber(ARGV[1]))
  return {0, text}
end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, text}`,
);
