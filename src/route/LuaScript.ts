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
    /**
     * Run with EVALSHA_RO/EVAL_RO: the script only reads, and Redis 7 then
     * checks its KEYS for read access alone (an ACL user with `%R~` on them
     * may run it; EVALSHA needs read and write on every key it declares).
     */
    readonly readOnly = false,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /**
   * Runs the script; with `map`, resolves with `map(reply)`. Not async, and
   * the mapping done in the same step as the NOSCRIPT fallback: on hot paths
   * such as V, each promise layer costs a turn of the microtask queue.
   */
  run(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[]): Promise<R>;
  run<M>(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[], map: (reply: R) => M): Promise<M>;
  run<M>(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[], map?: (reply: R) => M): Promise<R | M> {
    if (this.numberOfKeys !== -1 && keys.length !== this.numberOfKeys) return Promise.reject(new Error(`script ${this.name} takes ${this.numberOfKeys} keys, got ${keys.length}`));
    const sent = this.readOnly ? connection.evalsha_ro(this.sha, keys.length, ...keys, ...args) : connection.evalsha(this.sha, keys.length, ...keys, ...args);
    return (sent as Promise<R>).then(map, (error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      const loaded = (this.readOnly ? connection.eval_ro(this.source, keys.length, ...keys, ...args) : connection.eval(this.source, keys.length, ...keys, ...args)) as Promise<R>;
      return map === undefined ? loaded : loaded.then(map);
    });
  }

  /** Like {@link run}, with bulk replies as Buffers (for binary values). */
  async runBuffer(connection: Redis | Cluster, keys: readonly string[], args: readonly Arg[]): Promise<R> {
    try {
      return (await connection.callBuffer(this.readOnly ? 'EVALSHA_RO' : 'EVALSHA', this.sha, keys.length, ...keys, ...args)) as R;
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return (await connection.callBuffer(this.readOnly ? 'EVAL_RO' : 'EVAL', this.source, keys.length, ...keys, ...args)) as R;
    }
  }
}
