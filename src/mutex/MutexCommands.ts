import { NotConnectedError } from '../errors/NotConnectedError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { notSent, redisFailure } from '../route/redisFailure';
import type { MutexConnection } from './MutexConnection';
import type { MutexStore } from './MutexStore';
import { DeadlineTimer } from './DeadlineTimer';

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
 * enforced by one {@link DeadlineTimer} at the oldest call's deadline rather
 * than a timer per call: a timer per call costs the P/V fast path.
 */
export class MutexCommands {
  /** Calls awaiting a reply, oldest first; settled ones are dropped when the deadline timer fires. */
  private inflight: InflightCommand[] = [];
  private readonly deadlines = new DeadlineTimer((now) => this.failOverdue(now));
  private closed = false;

  constructor(
    private readonly connection: MutexConnection,
    private readonly commandTimeoutMs: number,
  ) {}

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
      this.deadlines.ensure(call.deadline);
      pending.then(
        (value) => {
          const late = call.settled;
          call.settled = true;
          this.dropAnswered();
          if (late) {
            onLate?.(value);
            return;
          }
          if (finish === undefined) return resolve(value as unknown as R);
          try {
            resolve(finish(value));
          } catch (error) {
            reject(error);
          }
        },
        (error: unknown) => {
          const late = call.settled;
          call.settled = true;
          this.dropAnswered();
          if (late) return;
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

  /** Refuses later commands and stops the deadline timer (commands in flight still settle by their replies). */
  close(): void {
    this.closed = true;
    this.deadlines.close();
  }

  /** Drops the settled calls at the head: replies come in order on one connection, so usually just the oldest (on a cluster, out of order across masters). */
  private dropAnswered(): void {
    while (this.inflight.length > 0 && this.inflight[0].settled) this.inflight.shift();
  }

  /** Fails every call past its deadline; answers the oldest deadline of the calls still in flight. */
  private failOverdue(now: number): number | undefined {
    const waiting: InflightCommand[] = [];
    let next: number | undefined;
    for (const call of this.inflight) {
      if (call.settled) continue;
      if (now < call.deadline) {
        waiting.push(call);
        if (next === undefined || call.deadline < next) next = call.deadline;
        continue;
      }
      call.settled = true;
      call.reject(new RedisUnavailableError(label(call.operation, call.mutexId), `no reply within ${this.commandTimeoutMs} ms (commandTimeoutMs)`));
    }
    this.inflight = waiting;
    return next;
  }
}

/** `operation "mutexId"`, the label of error messages. */
export function label(operation: string, mutexId: string | undefined): string {
  return mutexId === undefined ? operation : `${operation} "${mutexId}"`;
}


