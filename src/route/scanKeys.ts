import { scanAll, type RedisCommands } from './connection';

/** Every key matching `pattern`, by SCAN (never blocking Redis); on a cluster, over every master. */
export function scanKeys(redis: RedisCommands, pattern: string): Promise<string[]> {
  return scanAll(redis, pattern, 1000);
}
