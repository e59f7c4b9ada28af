import { randomBytes } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';

/**
 * The one place intracom makes ids.
 *
 * - {@link newUuid}: a random UUID (v4), for ids that users store, log or hand
 *   to other systems: instance ids, query ids (handles, dead letters,
 *   duplicate suppression).
 * - {@link ShortIds}: a random prefix and a base-36 counter, for ids that live
 *   only inside intracom and are made on a hot path where their cost was
 *   measured (docs/benchmarks.md): RPC request ids (at most 12 characters,
 *   which V8 keeps flat) and mutex owner tokens (short enough that a lock
 *   value stays within Redis's 44-byte embedded strings).
 */
export function newUuid(): string {
  return uuidv4();
}

/** A new query id: a random UUID. */
export function newQueryId(): string {
  return uuidv4();
}

/**
 * Unique ids from a random prefix of `prefixBytes` bytes (base64url) and a
 * counter. With `redrawAfter`, a new prefix is drawn once the counter reaches
 * it, which bounds the length of the ids.
 */
export class ShortIds {
  private prefix: string;
  private counter = 0;

  constructor(
    private readonly prefixBytes: number,
    private readonly redrawAfter = Number.MAX_SAFE_INTEGER,
  ) {
    this.prefix = randomBytes(prefixBytes).toString('base64url');
  }

  /** The next id. */
  next(): string {
    if (this.counter === this.redrawAfter) {
      this.prefix = randomBytes(this.prefixBytes).toString('base64url');
      this.counter = 0;
    }
    return this.prefix + (this.counter++).toString(36);
  }
}
