import { randomBytes } from 'node:crypto';
import type { Names } from '../../vars/names';
import type { MutexKeys } from './MutexStore';
import { assertMutexId, assertNodeId } from './record';

/** Most mutex ids whose key is kept; the cache starts again beyond it. */
const MAX_CACHED_KEYS = 1024;

/**
 * The caches of the P/V fast path: a mutex id validated once and its keys
 * built once, the node id a service passes again and again checked once, and
 * the owner tokens, made without a random draw per lock.
 */
export class LockKeys {
  private readonly keys = new Map<string, MutexKeys>();
  private lastNodeId: string | undefined;
  /**
   * 72 random bits per RedisMutex (12 characters): the start of each of its
   * tokens, and the name of its wake channel. Tokens are this and a counter:
   * unique per acquisition, and short, so that a lock value with a short
   * nodeId stays within Redis's 44-byte embedded strings.
   */
  readonly waiterId = randomBytes(9).toString('base64url');
  private tokenCounter = 0;

  constructor(private readonly names: Names) {}

  /** Validates a mutex id and returns its keys. */
  of(mutexId: string): MutexKeys {
    const cached = this.keys.get(mutexId);
    if (cached !== undefined) return cached;
    assertMutexId(mutexId);
    if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
    const keys = { lock: this.names.mutex(mutexId), fence: this.names.mutexFence(mutexId), queue: this.names.mutexQueue(mutexId), waiters: this.names.mutexWaiters(mutexId) };
    this.keys.set(mutexId, keys);
    return keys;
  }

  /** Validates a node id, skipping the check for the one seen last. */
  checkNodeId(nodeId: string): void {
    if (nodeId === this.lastNodeId) return;
    assertNodeId(nodeId);
    this.lastNodeId = nodeId;
  }

  /** A new owner token, unique per acquisition. */
  nextToken(): string {
    return this.waiterId + (++this.tokenCounter).toString(36);
  }
}
