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

/** One callable target (a service or a module) as the caller sees it. */
export interface RpcTarget {
  readonly scope: RpcScope;
  /** Service key or module name. */
  readonly name: string;
  /** `service.<key>.rpc` or `module.<name>.rpc`; also the registry name of its serving instances. */
  readonly topic: string;
  /** Live instance ids, as last read from the registry. */
  instances: string[];
  /** When `instances` was read (`performance.now()`, ms); NEVER_READ before the first read. */
  fetchedAt: number;
  /** The read in progress, when any. */
  refreshing: Promise<void> | undefined;
  /** Round-robin position. */
  cursor: number;
  /** The instance this tick's burst of calls goes to (undefined between bursts). */
  burst: string | undefined;
  /** Calls the current burst may still take. */
  burstLeft: number;
  /** Instances whose channel reached nobody, until when (`performance.now()`, ms) they are avoided. */
  suspects: Map<string, number>;
  /** Request channel per instance id; null for an instance that takes no calls from this service. */
  channels: Map<string, string | null>;
  /** The callers each instance that names them accepts (absent: the open channel). */
  callers: Map<string, readonly string[]>;
}

const NEVER_READ = -1;

/** How long an instance whose channel reached nobody is avoided when others exist. */
const SUSPECT_MS = 10_000;

/**
 * The caller's view of who serves what: the live instances of each target,
 * read from the RPC registry (one sorted set per target, refreshed by each
 * serving instance's heartbeat), cached for `cacheMs`, refreshed in the
 * background when stale and at once when nothing is left to try. Instances
 * are chosen round-robin, so load spreads: per call, or per burst (every
 * call to one target within one tick goes to one instance, up to `burstSize`
 * calls, and the next burst to the next instance), so that a burst leaves as
 * one frame however many instances serve the target.
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
      target = { scope, name, topic, instances: [], fetchedAt: NEVER_READ, refreshing: undefined, cursor: 0, burst: undefined, burstLeft: 0, suspects: new Map(), channels: new Map(), callers: new Map() };
      this.targets.set(topic, target);
    }
    return target;
  }

  /** True when the cached list must be read before choosing (never read yet). */
  needsRead(target: RpcTarget): boolean {
    return target.fetchedAt === NEVER_READ;
  }

  /**
   * Chooses an instance not in `exclude`, round-robin, avoiding suspects
   * while others remain; undefined when none is left. Starts a background
   * refresh when the list is stale. With `burstSize` above 1, a first
   * attempt (no `exclude`) joins the burst open in this tick for the target,
   * if it has room, instead of moving on: the burst ends with the tick or
   * after `burstSize` calls.
   */
  pick(target: RpcTarget, exclude: Set<string> | undefined, now = performance.now(), burstSize = 1): string | undefined {
    if (now - target.fetchedAt > this.cacheMs && target.refreshing === undefined) {
      this.refresh(target).catch((error: unknown) => this.warnings.warn(`refresh ${target.topic}`, { err: error, target: target.topic }, 'could not refresh the live instances'));
    }
    if (burstSize > 1 && exclude === undefined) {
      if (target.burst !== undefined && target.burstLeft > 0) {
        target.burstLeft -= 1;
        return target.burst;
      }
      const id = this.next(target, undefined, now);
      if (id !== undefined && (target.suspects.size === 0 || !target.suspects.has(id))) this.openBurst(target, id, burstSize - 1);
      return id;
    }
    return this.next(target, exclude, now);
  }

  /** The next instance round-robin, as `pick` describes. */
  private next(target: RpcTarget, exclude: Set<string> | undefined, now: number): string | undefined {
    const list = target.instances;
    const count = list.length;
    let fallback: string | undefined;
    for (let i = 0; i < count; i++) {
      const id = list[(target.cursor + i) % count];
      if (exclude !== undefined && exclude.has(id)) continue;
      if (target.suspects.size > 0) {
        const until = target.suspects.get(id);
        if (until !== undefined) {
          if (until > now) {
            fallback ??= id;
            continue;
          }
          target.suspects.delete(id);
        }
      }
      target.cursor = (target.cursor + i + 1) % count;
      return id;
    }
    return fallback;
  }

  /** Reads the live instances of a target from the registry (one read at a time per target). */
  refresh(target: RpcTarget): Promise<void> {
    target.refreshing ??= (async () => {
      try {
        const announcements = await this.route.liveInstances(Names.rpcRegistry(target.topic));
        const ids: string[] = [];
        const callers = new Map<string, readonly string[]>();
        for (const bytes of announcements) {
          try {
            const announcement = this.codec.decode(bytes) as RpcAnnouncement;
            if (typeof announcement?.instanceId !== 'string') continue;
            ids.push(announcement.instanceId);
            if (Array.isArray(announcement.callers)) callers.set(announcement.instanceId, announcement.callers.filter((caller): caller is string => typeof caller === 'string'));
          } catch (error) {
            this.warnings.warn(`announcement ${target.topic}`, { err: error, target: target.topic }, 'an RPC announcement does not decode; skipped');
          }
        }
        ids.sort();
        if (!sameCallers(target.callers, callers)) target.channels.clear();
        target.callers = callers;
        target.instances = ids;
        target.fetchedAt = performance.now();
      } finally {
        target.refreshing = undefined;
      }
    })();
    return target.refreshing;
  }

  /** Marks an instance as gone (a request to it reached nobody): avoided until the registry drops it. */
  suspect(target: RpcTarget, instanceId: string): void {
    target.suspects.set(instanceId, performance.now() + SUSPECT_MS);
    if (target.burst === instanceId) target.burst = undefined;
  }

  private openBurst(target: RpcTarget, instanceId: string, room: number): void {
    if (target.burst === undefined) this.bursting.push(target);
    target.burst = instanceId;
    target.burstLeft = room;
    if (!this.burstEndScheduled) {
      this.burstEndScheduled = true;
      // queued behind the continuations already waiting in this tick, as the frame batcher's flush is: a burst is what one frame carries
      queueMicrotask(this.endBursts);
    }
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

function sameCallers(a: Map<string, readonly string[]>, b: Map<string, readonly string[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, callers] of a) {
    const other = b.get(id);
    if (other === undefined || other.join('\u0000') !== callers.join('\u0000')) return false;
  }
  return true;
}
