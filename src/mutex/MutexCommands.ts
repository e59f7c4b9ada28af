import { NotConnectedError } from '../errors/NotConnectedError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { notSent, redisFailure } from '../route/redisFailure';
import type { MutexConnection } from './MutexConnection';
import type { MutexStore } from './MutexStore';
import { Sweep } from './Sweep';

/** How often the deadline sweep runs at most, in ms: the precision of command deadlines. */
const SWEEP_MAX_MS = 25;

interface InflightCommand {
  deadline: number;
  settled: boolean;
  reject: (error: unknown) => void;
  operation: string;
  mutexId: string | undefined;
}

/**
 * Runs the store's commands under the command deadline (`commandTimeoutMs`),
 * turning connection failures into RedisUnavailableError. The deadlines are
 * enforced by one sweep interval, running only while a command is in flight,
 * rather than a timer per call: a timer per call costs the P/V fast path.
 */
export class MutexCommands {
  /** Calls awaiting a reply, oldest first; settled ones are dropped by the sweep. */
  private inflight: InflightCommand[] = [];
  private readonly sweep: Sweep;
  private closed = false;

  constructor(
    private readonly connection: MutexConnection,
    private readonly commandTimeoutMs: number,
  ) {
    this.sweep = new Sweep(Math.min(SWEEP_MAX_MS, Math.max(1, Math.floor(commandTimeoutMs / 10))), (now) => this.failOverdue(now));
  }

  /**
   * Runs one command. `onLate` gets a reply that came after the call was
   * failed by its deadline; `finish` computes what the call resolves with in
   * the same step as the reply is taken (no promise layer of its own). Not
   * async, and labels built only on failure: this is the P/V fast path.
   */
  run<T, R = T>(operation: string, mutexId: string | undefined, command: (store: MutexStore) => Promise<T>, onLate?: (value: T) => unknown, finish?: (value: T) => R | Promise<R>): Promise<R> {
    if (this.closed) return Promise.reject(new NotConnectedError(label(operation, mutexId), 'closed'));
    if (this.connection.mustConnect) {
      // First use: connect, and let every call made meanwhile wait for that connection.
      return this.connection.connect(label(operation, mutexId), this.commandTimeoutMs).then(
        () => this.run(operation, mutexId, command, onLate, finish),
        (error: unknown) => {
          throw this.failure(label(operation, mutexId), error);
        },
      );
    }
    let pending: Promise<T>;
    try {
      pending = command(this.connection.store);
    } catch (error) {
      return Promise.reject(this.failure(label(operation, mutexId), error));
    }
    return new Promise<R>((resolve, reject) => {
      const call: InflightCommand = { deadline: Date.now() + this.commandTimeoutMs, settled: false, reject, operation, mutexId };
      this.inflight.push(call);
      if (!this.sweep.running) this.sweep.start();
      pending.then(
        (value) => {
          if (this.inflight[0] === call) this.inflight.shift(); // replies come in order: usually the oldest
          if (call.settled) {
            onLate?.(value);
            return;
          }
          call.settled = true;
          if (finish === undefined) return resolve(value as unknown as R);
          try {
            resolve(finish(value));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          if (this.inflight[0] === call) this.inflight.shift();
          if (call.settled) return;
          call.settled = true;
          reject(this.failure(label(operation, mutexId), error));
        },
      );
    });
  }

  /**
   * A failed command as one of {@link redisFailure}'s typed errors. A
   * command refused because the connection is down names why it is down
   * (a WRONGPASS on reconnecting, say) as its cause.
   */
  private failure(operation: string, error: unknown): unknown {
    const why = this.connection.lastError;
    if (why !== undefined && notSent(error)) return new RedisUnavailableError(operation, `the connection is down (${why.message}); the command was not sent`, { cause: why, applied: false });
    return redisFailure(operation, error, this.connection.target);
  }

  /** Refuses later commands and stops the sweep (commands in flight still settle by their replies). */
  close(): void {
    this.closed = true;
    this.sweep.close();
  }

  /** Fails every call past its deadline; answers whether any call is still in flight. */
  private failOverdue(now: number): boolean {
    const waiting: InflightCommand[] = [];
    for (const call of this.inflight) {
      if (call.settled) continue;
      if (now < call.deadline) {
        waiting.push(call);
        continue;
      }
      call.settled = true;
      call.reject(new RedisUnavailableError(label(call.operation, call.mutexId), `no reply within ${this.commandTimeoutMs} ms (commandTimeoutMs)`));
    }
    this.inflight = waiting;
    return waiting.length > 0;
  }
}

/** `operation "mutexId"`, the label of error messages. */
export function label(operation: string, mutexId: string | undefined): string {
  return mutexId === undefined ? operation : `${operation} "${mutexId}"`;
}


