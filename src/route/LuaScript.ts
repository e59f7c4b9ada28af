import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

type Arg = string | number | Buffer;

/**
 * A Lua script run by SHA1 (EVALSHA), loaded with EVAL on the first NOSCRIPT
 * reply. Keeps the script text beside its KEYS/ARGV header and leaves the
 * caller's ioredis instance untouched (no defineCommand).
 */
export class LuaScript<R = unknown> {
  readonly sha: string;

  constructor(
    /** Name for error messages. */
    readonly name: string,
    /** Number of KEYS the script takes; -1 when it varies (the keys passed are counted). */
    readonly numberOfKeys: number,
    /** The script text, starting with a header comment naming KEYS and ARGV. */
    readonly source: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[]): Promise<R> {
    if (this.numberOfKeys !== -1 && keys.length !== this.numberOfKeys) throw new Error(`script ${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`);
    try {
      return (await connection.evalsha(this.sha, keys.length, ...keys, ...args)) as R;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await connection.eval(this.source, keys.length, ...keys, ...args)) as R;
    }
  }

  /** Like {@link run}, with bulk replies as Buffers (for binary values). */
  async runBuffer(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[]): Promise<R> {
    try {
      return (await connection.callBuffer('EVALSHA', this.sha, keys.length, ...keys, ...args)) as R;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await connection.callBuffer('EVAL', this.source, keys.length, ...keys, ...args)) as R;
    }
  }
}
