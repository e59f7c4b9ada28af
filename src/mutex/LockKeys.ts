import type { Names } from '../../vars/names';
import { assertMutexId, assertNodeId } from './record';
import { ShortIds } from '../envelope/ids';

/** Most mutex ids whose key is kept; the cache starts again beyond it. */
const MAX_CACHED_KEYS = 1024;

/**
 * The caches of the P/V fast path: a mutex id validated once and its key
 * built once, the node id a service passes again and again checked once, and
 * the owner tokens, made without a random draw per lock.
 */
export class LockKeys {
  private readonly keys = new Map<string, string>();
  private lastNodeId: string | undefined;
  // Unique per acquisition: 72 random bits per RedisMutex, then a counter. Short, so that a lock value
  // with a short nodeId stays within Redis's 44-byte embedded strings.
  private readonly tokens = new ShortIds(9);

  constructor(private readonly names: Names) {}

  /** Validates a mutex id and returns its lock key. */
  lockKey(mutexId: string): string {
    const cached = this.keys.get(mutexId);
    if (cached !== undefined) return cached;
    assertMutexId(mutexId);
    if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
    const key = this.names.mutex(mutexId);
    this.keys.set(mutexId, key);
    return key;
  }

  /** Validates a node id, skipping the check for the one seen last. */
  checkNodeId(nodeId: string): void {
    if (nodeId === this.lastNodeId) return;
    assertNodeId(nodeId);
    this.lastNodeId = nodeId;
  }

  /** A new owner token, unique per acquisition. */
  nextToken(): string {
    return this.tokens.next();
  }
}
