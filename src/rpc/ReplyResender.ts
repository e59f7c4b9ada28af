import { ConnectionLostError } from '../errors/ConnectionLostError';
import { NotConnectedError } from '../errors/NotConnectedError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';

/** A reply that may have to be published again: its state lives in the request's own job. */
export interface Resendable {
  /** The caller's reply channel: one caller's replies are bounded apart from the others'. */
  readonly replyTo: string;
  /** The reply last posted, to post again. */
  reply: object | undefined;
  /** Publishes made of it again so far. */
  replyAttempts: number;
  /** Until when (ms since the epoch) it may be published again: its caller's deadline, within {@link ResendLimits.windowMs}. */
  replyUntil: number;
  replyTimer: NodeJS.Timeout | undefined;
}

/** How far a reply is published again. */
export interface ResendLimits {
  /** First pause (ms); each later one doubles, up to `longestPauseMs`. */
  firstPauseMs: number;
  longestPauseMs: number;
  /**
   * How long after its first publish a reply may be published again, whatever
   * the deadline its request states (a request may state any; a forged one
   * names a caller that never listens).
   */
  windowMs: number;
  /** Replies waiting to be published again at most; one more gives up the one that has waited longest. */
  maxWaiting: number;
  /** Replies to one caller (one reply channel) waiting at most; one more is given up at once. */
  maxPerCaller: number;
}

/**
 * The pauses cover a failover of the caller's shard with Redis Cluster's
 * default `cluster-node-timeout` (15 s) in about 20 publishes at most.
 */
export const RESEND_LIMITS: ResendLimits = { firstPauseMs: 25, longestPauseMs: 2000, windowMs: 30_000, maxWaiting: 10_000, maxPerCaller: 1000 };

/**
 * Publishes a reply again when no subscriber received it or Redis could not
 * take the publish, until its caller stops waiting.
 *
 * A reply is the only copy of a call's outcome: the handler ran, and sending
 * the request again would run it twice. It reaches nobody while the caller's
 * reply channel has no subscriber: its shard's slot being moved (the channel
 * belongs to nobody until the target claims it, and the caller's
 * subscription is dropped by the source and made again on the target), its
 * shard's master failing over, its subscriber reconnecting. And Redis
 * refuses the publish itself during a failover (`CLUSTERDOWN`, a cluster
 * that keeps redirecting) or an outage. Both last from milliseconds to
 * seconds, so the publish is tried again with growing pauses. The caller
 * takes the first copy that arrives and ignores the others; a reply whose
 * caller left (it timed out, closed or died) costs a few publishes until
 * the call's deadline, and never more than {@link ResendLimits} allow.
 */
export class ReplyResender<J extends Resendable> {
  /** In the order they began to wait: the first is given up when the set is full. */
  private readonly waiting = new Set<J>();
  /** Replies waiting per reply channel. */
  private readonly perCaller = new Map<string, number>();
  private closed = false;

  constructor(
    /** Posts the job's reply again; its outcome comes back through {@link retry}. */
    private readonly post: (job: J) => void,
    private readonly counters: { repliesResent: number },
    private readonly limits: ResendLimits = RESEND_LIMITS,
  ) {}

  /** Prepares `job` for its first publish at `now`: it may be published again until `callDeadline` (ms since the epoch), within the window. */
  start(job: J, reply: object, callDeadline: number, now = Date.now()): void {
    job.reply = reply;
    job.replyUntil = Math.min(callDeadline, now + this.limits.windowMs);
  }

  /**
   * Called with the outcome of publishing `job`'s reply: true when it will be
   * published again (it reached no subscriber, or Redis could not take it,
   * and its caller still waits); false when the outcome is final.
   */
  retry(job: J, error: unknown, receivers: number | undefined): boolean {
    if (this.closed || (error === undefined ? receivers !== 0 : !redisWasAway(error))) return false;
    const pause = doublingPause(this.limits.firstPauseMs, this.limits.longestPauseMs, job.replyAttempts);
    if (Date.now() + pause >= job.replyUntil || job.reply === undefined) return false;
    const ofCaller = this.perCaller.get(job.replyTo) ?? 0;
    // one caller that left with many calls pending (or a flood of requests naming one) cannot crowd out the others
    if (ofCaller >= this.limits.maxPerCaller) return false;
    // nor can many such callers: the reply that has waited longest, the least likely to be heard, makes room
    if (this.waiting.size >= this.limits.maxWaiting) this.giveUp(this.waiting.values().next().value as J);
    job.replyAttempts += 1;
    this.waiting.add(job);
    this.perCaller.set(job.replyTo, ofCaller + 1);
    job.replyTimer = setTimeout(() => {
      job.replyTimer = undefined;
      this.forget(job);
      this.counters.repliesResent += 1;
      this.post(job);
    }, pause);
    // the route's connections keep a serving process alive: a reply waiting for its caller must not
    job.replyTimer.unref();
    return true;
  }

  /** Replies waiting to be published again. */
  get size(): number {
    return this.waiting.size;
  }

  /** Gives up every reply waiting to be published again, and those that would; returns how many waited. */
  close(): number {
    this.closed = true;
    const dropped = this.waiting.size;
    for (const job of this.waiting) clearTimeout(job.replyTimer);
    this.waiting.clear();
    this.perCaller.clear();
    return dropped;
  }

  private giveUp(job: J): void {
    clearTimeout(job.replyTimer);
    job.replyTimer = undefined;
    this.forget(job);
  }

  private forget(job: J): void {
    this.waiting.delete(job);
    const left = (this.perCaller.get(job.replyTo) ?? 1) - 1;
    if (left > 0) this.perCaller.set(job.replyTo, left);
    else this.perCaller.delete(job.replyTo);
  }
}

/** A failure that says nothing about the message itself (its size, its encoding, an ACL): Redis was not there to take it. */
export function redisWasAway(error: unknown): boolean {
  return error instanceof RedisUnavailableError || error instanceof NotConnectedError || error instanceof ConnectionLostError;
}

/** The pause before try `done + 1` of something tried again: `firstMs`, doubling with each try, at most `longestMs`. */
export function doublingPause(firstMs: number, longestMs: number, done: number): number {
  return Math.min(longestMs, firstMs * 2 ** Math.min(done, 16));
}
