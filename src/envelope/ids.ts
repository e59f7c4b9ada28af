import { randomBytes } from 'node:crypto';

/**
 * Query ids: a random per-process prefix (64 bits, base64url) and a counter.
 * Unique across processes with overwhelming probability, about half the
 * length of a UUID (ids travel in every envelope, completion record and
 * acknowledgement), and cheaper to make.
 */
const prefix = randomBytes(8).toString('base64url');
let counter = 0;

/** A new unique query id, such as `Xk3v9Qe1bZs.1a2b`. */
export function newQueryId(): string {
  counter += 1;
  return `${prefix}.${counter.toString(36)}`;
}
