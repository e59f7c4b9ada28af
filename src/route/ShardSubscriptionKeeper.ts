import type { Cluster } from 'ioredis';

/** How often the keeper compares the shard channels wanted with those each owner has accepted (ms). */
export const SHARD_CHECK_MS = 250;
/** First pause after an SSUBSCRIBE the owner refused (ms); doubled at each refusal, up to {@link SHARD_RETRY_MAX_MS}. */
export const SHARD_RETRY_BASE_MS = 50;
/**
 * Longest pause between two SSUBSCRIBE attempts of one slot (ms): short, since the slot's new owner may claim it at
 * any moment, and a refusal costs one small command on one connection.
 */
export const SHARD_RETRY_MAX_MS = 500;

/** The parts of ioredis's sharded-subscriber group the keeper reads (ioredis 6, `shardedSubscribers: true`). */
interface SubscriberGroup {
  /** Slot -> the shard channels subscribed through the Cluster (duplicates possible). */
  channels: Map<number, string[]>;
  /** Slot -> [master node key, replicas...], the group's own copy of the slot map. */
  clusterSlots: string[][];
  /** The subscriber serving `slot`'s master, started if idle. */
  getResponsibleSubscriber(slot: number): { getInstance(): ShardConnection | null } | undefined;
}

/** One ioredis `Redis` of the group: a subscriber connection to one master. */
interface ShardConnection {
  status: string;
  /** The channels this connection's server has confirmed (kept by ioredis from the server's replies and pushes). */
  condition?: { subscriber?: false | { set: { ssubscribe: Record<string, true> } } };
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
}

/**
 * Keeps each shard channel of a cluster subscriber subscribed on the master
 * that owns its slot, whatever the order in which a slot migration or a
 * failover reaches the nodes.
 *
 * ioredis re-subscribes a slot's channels only when its reading of the slot
 * map changes, once, and drops a refusal: a map read from the source right
 * after it gave a slot up already names the target, whose `SSUBSCRIBE` is
 * refused with `MOVED` while it has not claimed the slot yet; the map then
 * never changes again, so the subscription was never made (1 run in 4 of the
 * source-first migration test). The keeper compares, every
 * {@link SHARD_CHECK_MS}, the channels wanted (the group's own list) with
 * those the owner's connection has confirmed (a server confirms `SSUBSCRIBE`
 * only for a slot it owns, and announces with `SUNSUBSCRIBE` the channels of a
 * slot it gives up) and subscribes what is still missing at the next check,
 * again after each refusal with a doubling pause, rereading the slot map
 * then. The check reads memory only; nothing is sent while every channel is
 * where it should be.
 */
export class ShardSubscriptionKeeper {
  private timer: NodeJS.Timeout | undefined;
  /** Per slot: refusals so far, and when the next attempt may go. */
  private readonly backoff = new Map<number, { refusals: number; nextAt: number }>();
  /** Slots with an SSUBSCRIBE in flight. */
  private readonly pending = new Set<number>();
  /** Slots found missing a channel at the last check: acted on if still so at the next (a subscription may be on its way). */
  private readonly suspect = new Set<number>();

  constructor(private readonly subscriber: Cluster) {}

  /** Starts checking (again); idempotent. The timer never keeps the process alive. */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), SHARD_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.backoff.clear();
    this.suspect.clear();
  }

  /** One comparison; subscribes what is missing on the owner of each slot. */
  check(): void {
    const group = (this.subscriber as unknown as { shardedSubscribers?: SubscriberGroup }).shardedSubscribers;
    if (group === undefined || !(group.channels instanceof Map) || typeof group.getResponsibleSubscriber !== 'function') return;
    const now = Date.now();
    for (const [slot, listed] of group.channels) {
      if (listed.length === 0 || this.pending.has(slot) || group.clusterSlots[slot] === undefined) continue;
      const wait = this.backoff.get(slot);
      if (wait !== undefined && now < wait.nextAt) continue;
      const connection = group.getResponsibleSubscriber(slot)?.getInstance();
      if (connection === null || connection === undefined || connection.status !== 'ready') continue;
      const confirmed = connection.condition?.subscriber ? connection.condition.subscriber.set.ssubscribe : {};
      const missing = [...new Set(listed)].filter((channel) => confirmed[channel] !== true);
      if (missing.length === 0) {
        this.backoff.delete(slot);
        this.suspect.delete(slot);
        continue;
      }
      // a first subscription, or ioredis's own re-subscription, may still be on its way: give it one check
      if (!this.suspect.has(slot) && wait === undefined) {
        this.suspect.add(slot);
        continue;
      }
      this.suspect.delete(slot);
      this.subscribe(group, slot, connection, missing);
    }
  }

  private subscribe(group: SubscriberGroup, slot: number, connection: ShardConnection, channels: string[]): void {
    this.pending.add(slot);
    connection.ssubscribe(...channels).then(
      () => {
        this.pending.delete(slot);
        this.backoff.delete(slot);
        // unsubscribed meanwhile: this subscription is nobody's
        const still = new Set(group.channels.get(slot) ?? []);
        const orphans = channels.filter((channel) => !still.has(channel));
        if (orphans.length > 0) connection.sunsubscribe(...orphans).catch(() => undefined);
      },
      () => {
        // refused (MOVED: not the owner yet, or no longer) or the connection went: wait, reread the map, try again
        this.pending.delete(slot);
        const refusals = (this.backoff.get(slot)?.refusals ?? 0) + 1;
        const pause = Math.min(SHARD_RETRY_BASE_MS * 2 ** (refusals - 1), SHARD_RETRY_MAX_MS);
        this.backoff.set(slot, { refusals, nextAt: Date.now() + pause });
        if (this.subscriber.status === 'ready') this.subscriber.refreshSlotsCache();
      },
    );
  }
}
