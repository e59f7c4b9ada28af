import type { RedisClient } from '../client/RedisClient';
import { isCluster } from '../route/connection';
import { globMatch } from '../route/glob';
import type { MessageListener, Unsubscribe } from '../route/Route';

/** How often `watch` looks for new shard channels on a cluster, in ms. */
export const SHARD_DISCOVERY_MS = 500;

/**
 * What `watch` adds on a cluster with sharded pub/sub, where a pattern
 * (PSUBSCRIBE) sees no shard channel: every SHARD_DISCOVERY_MS, each master
 * lists its shard channels of the namespace that have a subscriber
 * (`PUBSUB SHARDCHANNELS`); those whose topic matches the pattern are
 * subscribed with SSUBSCRIBE, and dropped again once the watcher is their only
 * subscriber, so that watching never makes a dead RPC instance look live for
 * longer than one discovery round. A channel nobody subscribes to is not seen:
 * neither would anyone else see what is sent there. Resolves with the stop
 * function; undefined when the client is not on a sharded cluster.
 */
export async function watchShardChannels(client: RedisClient, pattern: string, listener: MessageListener): Promise<Unsubscribe | undefined> {
  const route = client.route;
  const medium = route.medium;
  if (medium?.kind !== 'redis' || !isCluster(medium.connection) || !client.names.shardChannels) return undefined;
  const cluster = medium.connection;
  const watched = new Map<string, Unsubscribe>();
  let stopped = false;
  const round = async (): Promise<void> => {
    const listed = await Promise.all(cluster.nodes('master').map((node) => (node.call('PUBSUB', 'SHARDCHANNELS', client.names.channel('*')) as Promise<string[]>).catch(() => [] as string[])));
    const found = new Set(listed.flat().filter((channel) => channel.includes('{') && globMatch(pattern, client.names.topicOf(channel))));
    const counts = await route.channelSubscribers([...watched.keys()]).catch(() => [] as number[]);
    [...watched.keys()].forEach((channel, i) => {
      if (counts[i] !== undefined && counts[i] <= 1) {
        void watched.get(channel)?.();
        watched.delete(channel);
        found.delete(channel);
      }
    });
    for (const channel of found) {
      if (stopped || watched.has(channel)) continue;
      watched.set(channel, await route.subscribe(channel, listener));
    }
  };
  await round();
  const timer = setInterval(() => void round().catch(() => undefined), SHARD_DISCOVERY_MS);
  return async () => {
    stopped = true;
    clearInterval(timer);
    await Promise.all([...watched.values()].map((unsubscribe) => unsubscribe()));
    watched.clear();
  };
}
