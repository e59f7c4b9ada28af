import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { RateLimitedLog } from '../log/RateLimitedLog';
import { Names } from '../../vars/names';
import type { RpcScope } from '../../vars/functions';
import type { Codec } from '../envelope/codec';
import type { Route } from '../route/Route';

/** What a serving instance announces in the RPC registry of a target. */
export interface RpcAnnouncement {
  /** Instance id. */
  instanceId: string;
  /** Service key of the instance (a module is served by an instance of some service). */
  service: string;
  host: string;
  pid: number;
  /** ms since the epoch. */
  startedAt: number;
  /** The services the instance takes calls from, each on its own channel; absent: any, on the open channel. */
  callers?: string[];
}

/**
 * What this caller has given one instance of a target, for the choice of
 * the instance of each burst. One per incarnation: an instance that restarts
 * under the same id (a new `startedAt` in the registry) gets a new one, so
 * that what the old process did (it closed, went silent, was tried by a
 * call) is not held against the new one.
 */
export interface InstanceLoad {
  /** Instance id. */
  readonly id: string;
  /** When this incarnation started, as announced (ms since the epoch; 0 when not announced). */
  readonly startedAt: number;
  /** Calls given to it so far; lifted to within BALANCE_LAG_BURSTS bursts of the most-given instance when it lags (see `pick`). */
  given: number;
  /** Calls given to it and not yet settled or sent elsewhere. */
  outstanding: number;
  /** A call it was given timed out, and it has answered nothing since: it is given one call at a time, and none while it holds one. */
  silent: boolean;
}

/** One callable target (a service or a module) as the caller sees it. */
export interface RpcTarget {
  readonly scope: RpcScope;
  /** Service key or module name. */
  readonly name: string;
  /** `service.<key>.rpc` or `module.<name>.rpc`; also the registry name of its serving instances. */
  readonly topic: string;
  /** The live instances, as last read from the registry, sorted by id. */
  instances: InstanceLoad[];
  /** When `instances` was read (`performance.now()`, ms); NEVER_READ before the first read. */
  fetchedAt: number;
  /** The read in progress, when any. */
  refreshing: Promise<void> | undefined;
  /** Round-robin position. */
  cursor: number;
  /** The instance this tick's burst of calls goes to (undefined between bursts). */
  burst: InstanceLoad | undefined;
  /** Calls the current burst may still take. */
  burstLeft: number;
  /** Instances not suspected when the current burst opened: with two or more, none may hold more than half the calls in flight (see `belowHalf`). */
  usable: number;
  /** The most calls this caller had in flight to the target lately (halved every PEAK_HALF_LIFE_MS without a new peak). */
  peak: number;
  /** When `peak` was last set or halved (`performance.now()`, ms). */
  peakAt: number;
  /** Calls given to the instances of this target and not yet settled or sent elsewhere (the sum of their `outstanding`). */
  outstanding: number;
  /** The load of every instance seen, listed now or not: one missing from a registry read keeps its counts when it is back. */
  loads: Map<string, InstanceLoad>;
  /** Instances whose channel reached nobody, until when (`performance.now()`, ms) they are avoided. */
  suspects: Map<InstanceLoad, number>;
  /** Request channel per instance id; null for an instance that takes no calls from this service. */
  channels: Map<string, string | null>;
  /** The callers each instance that names them accepts (absent: the open channel). */
  callers: Map<string, readonly string[]>;
}

const NEVER_READ = -1;

/**
 * How often the peak of calls in flight halves when not reached again: a
 * client's usual number in flight bounds what one instance may hold, also
 * in a tick that starts with none in flight (bursts of its usual size, not
 * of one, two, four...), and a client that calls less often soon has its
 * bound shrink with it.
 */
const PEAK_HALF_LIFE_MS = 1_000;

/** How long an instance whose channel reached nobody is avoided when others exist. */
const SUSPECT_MS = 10_000;

/**
 * How far, in bursts, an instance's calls given may lag the most-given
 * instance's before they are lifted: an instance that was full or suspect
 * for a while catches up by at most this many bursts, not by everything it
 * missed.
 */
const BALANCE_LAG_BURSTS = 2;

/**
 * The caller's view of who serves what: the live instances of each target,
 * read from the RPC registry (one sorted set per target, refreshed by each
 * serving instance's heartbeat), cached for `cacheMs`, refreshed in the
 * background when stale and at once when nothing is left to try. Instances
 * are chosen so that load spreads: per call (round-robin), or per burst
 * (every call to one target within one tick goes to one instance, up to
 * `burstSize` calls), so that a burst leaves as one frame however many
 * instances serve the target. Each burst goes to the instance this caller
 * has given the fewest calls, so that bursts of uneven sizes still even out
 * the calls, skipping an instance that holds a burst more unanswered calls
 * than another: a slow or stuck instance is given no more than it answers.
 */
export class InstanceDirectory {
  private readonly targets = new Map<string, RpcTarget>();
  /** Targets with a burst open in this tick. */
  private bursting: RpcTarget[] = [];
  private burstEndScheduled = false;

  /** Warnings that remote traffic or an outage can repeat: one line per window and key, with counts. */
  private readonly warnings: RateLimitedLog;

  constructor(
    private readonly route: Route,
    private readonly names: Names,
    /** The service this client calls as. */
    private readonly service: string,
    private readonly codec: Codec,
    private readonly cacheMs: number,
    logger: Logger,
  ) {
    this.warnings = new RateLimitedLog(logger);
  }

  /** The target for a topic (created on first use). */
  target(scope: RpcScope, name: string, topic: string): RpcTarget {
    let target = this.targets.get(topic);
    if (target === undefined) {
      target = { scope, name, topic, instances: [], fetchedAt: NEVER_READ, refreshing: undefined, cursor: 0, burst: undefined, burstLeft: 0, usable: 0, peak: 0, peakAt: 0, outstanding: 0, loads: new Map(), suspects: new Map(), channels: new Map(), callers: new Map() };
      this.targets.set(topic, target);
    }
    return target;
  }

  /** True when the cached list must be read before choosing (never read yet). */
  needsRead(target: RpcTarget): boolean {
    return target.fetchedAt === NEVER_READ;
  }

  /**
   * Chooses an instance not in `exclude`, avoiding suspects while others
   * remain; undefined when none is left. Starts a background refresh when
   * the list is stale. With `burstSize` 1 (or an `exclude`: a retry), the
   * next instance round-robin. With `burstSize` above 1, a first attempt
   * joins the burst open in this tick for the target, if it has room; else
   * it opens a burst at the instance given the fewest calls among those not
   * full, ties round-robin. An instance is full when it holds a burst (or
   * the mean per instance, when more) more unanswered calls than the
   * instance holding the fewest: one that answers slower than the others
   * keeps calls only up to that, and gets calls again as it answers. With
   * two or more instances, none holds more than half the calls in flight
   * (one call always: the least-holding instance can always take one), so
   * that one that never answers cannot hold every call of a client with
   * few in flight; and one whose call timed out ({@link unanswered}) gets
   * one call at a time, none while it holds one, until it answers again.
   * The burst ends with the tick, after `burstSize` calls, or when its
   * instance is full. The caller counts each call it gives the chosen
   * instance with {@link take} and {@link release}.
   */
  pick(target: RpcTarget, exclude: Set<InstanceLoad> | undefined, now = performance.now(), burstSize = 1): InstanceLoad | undefined {
    this.refreshIfStale(target, now);
    if (burstSize > 1 && exclude === undefined) {
      if (target.burst !== undefined && target.burstLeft > 0 && belowHalf(target, target.burst)) {
        target.burstLeft -= 1;
        return target.burst;
      }
      return this.openBurst(target, now, burstSize);
    }
    return this.next(target, exclude, now);
  }

  /** Starts reading the live instances of `target` in the background when the list is older than `cacheMs`. */
  refreshIfStale(target: RpcTarget, now = performance.now()): void {
    if (now - target.fetchedAt > this.cacheMs && target.refreshing === undefined) {
      this.refresh(target).catch((error: unknown) => this.warnings.warn(`refresh ${target.topic}`, { err: error, target: target.topic }, 'could not refresh the live instances'));
    }
  }

  /** A call is given to `load` (an instance of `target`): counted until {@link release}. */
  take(target: RpcTarget, load: InstanceLoad): void {
    load.given += 1;
    load.outstanding += 1;
    if (++target.outstanding > target.peak) target.peak = target.outstanding;
  }

  /** A call given to `load` is settled or sent elsewhere. */
  release(target: RpcTarget, load: InstanceLoad): void {
    load.outstanding -= 1;
    target.outstanding -= 1;
  }

  /**
   * Whether the registry now lists another incarnation of `load`'s instance
   * (its id restarted, so the process `load` stands for has stopped).
   */
  replaced(target: RpcTarget, load: InstanceLoad): boolean {
    const current = target.loads.get(load.id);
    return current !== undefined && current !== load;
  }

  /** `load` answered a call: not silent, and not suspected any more (its id may serve in a new process, on the same channel). */
  answered(target: RpcTarget, load: InstanceLoad): void {
    load.silent = false;
    if (target.suspects.size > 0) target.suspects.delete(load);
  }

  /** A call given to `load` timed out unanswered: it is given one call at a time until it answers (see `pick`). */
  unanswered(target: RpcTarget, load: InstanceLoad): void {
    load.silent = true;
    if (target.burst === load) target.burstLeft = 0;
  }

  /** Whether an instance is avoided now (its channel reached nobody lately); forgets a suspicion that ran out. */
  private suspected(target: RpcTarget, load: InstanceLoad, now: number): boolean {
    if (target.suspects.size === 0) return false;
    const until = target.suspects.get(load);
    if (until === undefined) return false;
    if (until > now) return true;
    target.suspects.delete(load);
    return false;
  }

  /** The next instance round-robin, as `pick` describes. */
  private next(target: RpcTarget, exclude: Set<InstanceLoad> | undefined, now: number): InstanceLoad | undefined {
    const list = target.instances;
    const count = list.length;
    // when only suspected or silent ones are left: the least-holding of them, a silent one holding a call last
    let fallback: InstanceLoad | undefined;
    let fallbackRank = Infinity;
    for (let i = 0; i < count; i++) {
      const load = list[(target.cursor + i) % count];
      if (exclude !== undefined && exclude.has(load)) continue;
      const silent = load.silent && load.outstanding > 0;
      if (silent || this.suspected(target, load, now)) {
        const rank = (silent ? 1_000_000_000 : 0) + load.outstanding;
        if (rank < fallbackRank) {
          fallback = load;
          fallbackRank = rank;
        }
        continue;
      }
      target.cursor = (target.cursor + i + 1) % count;
      return load;
    }
    return fallback;
  }

  /** Opens a burst at the instance `pick` describes (two passes over the instances) and returns it. */
  private openBurst(target: RpcTarget, now: number, burstSize: number): InstanceLoad | undefined {
    const list = target.instances;
    const count = list.length;
    let least = Infinity;
    let leastAt = 0;
    let most = -Infinity;
    let usable = 0;
    for (let i = 0; i < count; i++) {
      const load = list[i];
      if (load.given > most) most = load.given;
      if (!this.suspected(target, load, now)) {
        usable += 1;
        if (load.outstanding < least) {
          least = load.outstanding;
          leastAt = i;
        }
      }
    }
    // suspected ones are avoided while others remain: when none remains, every one is chosen from as if none were
    // (before sending, the check that it listens tells; the same id may serve again in a new process)
    const avoid = usable > 0 && target.suspects.size > 0;
    if (usable === 0) {
      if (count === 0) return undefined;
      for (let i = 0; i < count; i++) {
        if (list[i].outstanding < least) {
          least = list[i].outstanding;
          leastAt = i;
        }
      }
      usable = count;
    }
    target.usable = usable;
    if (now - target.peakAt >= PEAK_HALF_LIFE_MS) {
      target.peak = Math.max(target.outstanding, target.peak >> 1);
      target.peakAt = now;
    }
    const full = least + Math.max(burstSize, Math.ceil(target.outstanding / count));
    let chosen: InstanceLoad | undefined;
    let chosenAt = 0;
    // when every instance is full: the least-holding one not silent, else a suspected one not silent (the check that it
    // listens, before sending, tells: the same id may serve again in a new process), else the least-holding one
    let answering: InstanceLoad | undefined;
    let answeringAt = leastAt;
    let suspected: InstanceLoad | undefined;
    let suspectedAt = leastAt;
    for (let i = 0; i < count; i++) {
      const at = (target.cursor + i) % count;
      const load = list[at];
      const silent = load.silent && load.outstanding > 0;
      if (avoid && target.suspects.has(load)) {
        if (!silent && (suspected === undefined || load.outstanding < suspected.outstanding)) {
          suspected = load;
          suspectedAt = at;
        }
        continue;
      }
      if (!silent && (answering === undefined || load.outstanding < answering.outstanding)) {
        answering = load;
        answeringAt = at;
      }
      if (load.outstanding >= full || silent || !belowHalf(target, load)) continue;
      if (chosen === undefined || load.given < chosen.given) {
        chosen = load;
        chosenAt = at;
      }
    }
    if (chosen === undefined) {
      if (answering !== undefined) {
        chosen = answering;
        chosenAt = answeringAt;
      } else if (suspected !== undefined) {
        chosen = suspected;
        chosenAt = suspectedAt;
      } else {
        chosen = list[leastAt];
        chosenAt = leastAt;
      }
    }
    const burst = chosen;
    target.cursor = (chosenAt + 1) % count;
    const floor = most - BALANCE_LAG_BURSTS * burstSize;
    if (burst.given < floor) burst.given = floor;
    if (target.burst === undefined) this.bursting.push(target);
    target.burst = burst;
    target.burstLeft = burst.silent ? 0 : Math.min(burstSize, full - burst.outstanding) - 1;
    if (!this.burstEndScheduled) {
      this.burstEndScheduled = true;
      // queued behind the continuations already waiting in this tick, as the frame batcher's flush is: a burst is what one frame carries
      queueMicrotask(this.endBursts);
    }
    return burst;
  }

  /** Reads the live instances of a target from the registry (one read at a time per target). */
  refresh(target: RpcTarget): Promise<void> {
    target.refreshing ??= (async () => {
      try {
        const announcements = await this.route.liveInstances(Names.rpcRegistry(target.topic));
        const ids: string[] = [];
        const started = new Map<string, number>();
        const callers = new Map<string, readonly string[]>();
        for (const bytes of announcements) {
          try {
            const announcement = this.codec.decode(bytes) as RpcAnnouncement;
            if (typeof announcement?.instanceId !== 'string') continue;
            ids.push(announcement.instanceId);
            if (typeof announcement.startedAt === 'number') started.set(announcement.instanceId, announcement.startedAt);
            if (Array.isArray(announcement.callers)) callers.set(announcement.instanceId, announcement.callers.filter((caller): caller is string => typeof caller === 'string'));
          } catch (error) {
            this.warnings.warn(`announcement ${target.topic}`, { err: error, target: target.topic }, 'an RPC announcement does not decode; skipped');
          }
        }
        ids.sort();
        if (!sameCallers(target.callers, callers)) target.channels.clear();
        target.callers = callers;
        target.instances = this.loadsOf(target, ids, started);
        target.fetchedAt = performance.now();
      } finally {
        target.refreshing = undefined;
      }
    })();
    return target.refreshing;
  }

  /**
   * The loads of a new list of instance ids: an instance seen before keeps
   * its counts (also one a registry read missed for a while), a new one
   * starts level with the least-given listed one (it gets its share at once,
   * not a flood). An instance restarted under its id (another `startedAt`)
   * is a new incarnation: a new load, not suspected, not silent, given as
   * many as before (the calls still held by the old one are released from
   * the old load).
   */
  private loadsOf(target: RpcTarget, ids: string[], started: Map<string, number>): InstanceLoad[] {
    let least = Infinity;
    for (const load of target.instances) if (load.given < least) least = load.given;
    if (least === Infinity) least = 0;
    if (target.loads.size > 4096) target.loads.clear();
    const loads = ids.map((id) => {
      let load = target.loads.get(id);
      const startedAt = started.get(id) ?? 0;
      if (load === undefined || load.startedAt !== startedAt) {
        if (load !== undefined) target.suspects.delete(load);
        load = { id, startedAt, given: load?.given ?? least, outstanding: 0, silent: false };
        target.loads.set(id, load);
      }
      return load;
    });
    if (target.suspects.size > 0) {
      const listed = new Set(loads);
      for (const suspect of target.suspects.keys()) if (!listed.has(suspect)) target.suspects.delete(suspect);
    }
    return loads;
  }

  /**
   * Marks an incarnation as gone or leaving (a request to it reached nobody,
   * or it answered with the closing fault): avoided for SUSPECT_MS while
   * others remain, or until the registry no longer lists it; the same id
   * started again is another incarnation, not avoided.
   */
  suspect(target: RpcTarget, load: InstanceLoad): void {
    target.suspects.set(load, performance.now() + SUSPECT_MS);
    if (target.burst === load) target.burst = undefined;
  }

  private readonly endBursts = (): void => {
    this.burstEndScheduled = false;
    const ended = this.bursting;
    this.bursting = [];
    for (const target of ended) target.burst = undefined;
  };

  /**
   * The request channel of an instance for a target: this service's own one
   * when the instance names its callers, the open one otherwise; null when
   * the instance takes no calls from this service.
   */
  channel(target: RpcTarget, instanceId: string): string | null {
    let channel = target.channels.get(instanceId);
    if (channel === undefined) {
      if (target.channels.size > 1024) target.channels.clear();
      const callers = target.callers.get(instanceId);
      if (callers === undefined) channel = this.names.rpcInstance(target.topic, instanceId);
      else channel = callers.includes(this.service) ? this.names.rpcInstance(target.topic, instanceId, this.service) : null;
      target.channels.set(instanceId, channel);
    }
    return channel;
  }

  /** The callers the instances of a target accept, when they name them (for the error that says this service is not among them). */
  acceptedCallers(target: RpcTarget, instanceId: string): readonly string[] | undefined {
    return target.callers.get(instanceId);
  }
}

/**
 * Whether `load` may take one more call and hold at most half of the calls
 * in flight to `target`, counted as their recent peak when that is more
 * (always when it holds none, or with fewer than two instances to choose
 * from): the least-holding of two or more instances always may, so that a
 * burst can always open.
 */
function belowHalf(target: RpcTarget, load: InstanceLoad): boolean {
  return load.outstanding === 0 || target.usable < 2 || 2 * (load.outstanding + 1) <= Math.max(target.outstanding + 1, target.peak) + 1;
}

function sameCallers(a: Map<string, readonly string[]>, b: Map<string, readonly string[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, callers] of a) {
    const other = b.get(id);
    if (other === undefined || other.join('\u0000') !== callers.join('\u0000')) return false;
  }
  return true;
}
