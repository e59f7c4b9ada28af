import Redis from 'ioredis';
import { TopologyError } from '../errors/TopologyError';
import { notAClusterError, type OpenedConnection, type RedisCommands } from './connection';
import { redisFailure } from './redisFailure';

/**
 * ioredis's texts for a sentinel that monitors no master of the name asked:
 * it answers SENTINEL GET-MASTER-ADDR-BY-NAME with null, and the SENTINEL
 * SENTINELS that ioredis sends next (`updateSentinels`, on by default) with
 * "No such master with that name"; and for a sentinel it could not ask.
 */
const NO_SUCH_MASTER = [/^connected to sentinel (\S+) successfully, but got an invalid reply: null$/, /^failed to connect to sentinel (\S+) because .*No such master with that name/i];
const NOT_ASKED = /^failed to connect to sentinel (\S+) because /;
/** ioredis's text for a "sentinel" that is a Redis data server (plain or a cluster node): it knows no SENTINEL command. */
const NOT_A_SENTINEL = /^failed to connect to sentinel (\S+) because .*unknown command [`']sentinel[`']/i;
/** How long the look at a data server given as a sentinel may take (ms), to tell a plain server from a cluster node. */
const PROBE_MS = 1000;
/** ioredis's error at the end of a round of sentinels none of which named a master. */
const ROUND_FAILED = /^All sentinels are unreachable/;

/**
 * Calls `refuse` with a TopologyError as soon as the connection being made
 * shows it can never succeed, instead of letting ioredis retry until
 * `connectTimeoutMs` ("no answer"):
 * - cluster seeds that reached a server without cluster mode, or a Sentinel
 *   ({@link notAClusterError}), at the first failed reading of the slot map
 *   (no seed gave one, and one or more answered so; the others unreachable);
 * - a one-server connection whose handshake a cluster node answered with
 *   MOVED (ioredis would reconnect and get it again, for ever);
 * - Sentinel options whose master name no sentinel monitors: at the end of
 *   the first whole round of sentinels in which every sentinel that could be
 *   asked said it knows no such master (ioredis would go on asking them for
 *   ever). Sentinels that could not be asked at all leave it a
 *   ConnectionError (an outage);
 * - an address given as a sentinel that is a Redis data server (it answers
 *   SENTINEL with "unknown command"), at the end of a round in which no
 *   sentinel could name a master and none was unreachable.
 *
 * Watches `connection`: the one opened, or another made from it (a
 * subscriber). Returns a function that stops watching.
 */
export function watchTopologyRefusal(opened: OpenedConnection, refuse: (error: TopologyError) => void, connection: RedisCommands = opened.commands): () => void {
  const answeredNull = new Set<string>();
  const notAsked = new Set<string>();
  /** The seeds whose answer to CLUSTER SLOTS says they are no cluster node, and that answer. */
  const notClusterNodes = new Map<string, Error>();
  const onNodeError = (error: Error, seed: string): void => {
    if (notAClusterError(opened, error) !== undefined) notClusterNodes.set(seed, error);
  };
  /** Addresses given as sentinels that answered as Redis data servers. */
  const notSentinels = new Set<string>();
  const onSentinelError = (error: Error): void => {
    const dataServer = NOT_A_SENTINEL.exec(error.message)?.[1];
    if (dataServer !== undefined) {
      notSentinels.add(dataServer);
      return;
    }
    const address = NO_SUCH_MASTER.map((pattern) => pattern.exec(error.message)?.[1]).find((found) => found !== undefined);
    if (address !== undefined) {
      answeredNull.add(address);
      return;
    }
    const unreachable = NOT_ASKED.exec(error.message)?.[1];
    if (unreachable !== undefined) notAsked.add(unreachable);
  };
  const onError = (error: Error): void => {
    if (opened.topology === 'cluster') {
      // ioredis's error names the last seed's answer only: a Sentinel seed tried before an unreachable one counts too
      const [answer] = notClusterNodes.values();
      const refusal = notAClusterError(opened, error, [...notClusterNodes.keys()]) ?? (answer === undefined ? undefined : notAClusterError(opened, answer, [...notClusterNodes.keys()]));
      notClusterNodes.clear();
      if (refusal !== undefined) refuse(refusal);
      return;
    }
    if (error.name === 'ReplyError' && /^(MOVED|ASK) /.test(error.message)) {
      refuse(redisFailure('connect', error, opened.target) as TopologyError);
      return;
    }
    if (opened.topology !== 'sentinel' || !ROUND_FAILED.test(error.message)) return;
    // No sentinel named a master in this round (one that did would have ended it with a connection). A round
    // already under way when the watch began is not judged: it would name only the sentinels heard since.
    const sentinels = (connection as Redis).options.sentinels?.length ?? 0;
    // A data server given as a sentinel never names a master: refused when every other one said it knows none
    // (a sentinel that could not be asked may name it once it is back).
    if (notSentinels.size > 0 && notSentinels.size + answeredNull.size >= sentinels) {
      void notASentinelError(opened, connection as Redis, [...notSentinels], error).then(refuse);
    } else if (answeredNull.size > 0 && answeredNull.size + notAsked.size + notSentinels.size >= sentinels) {
      refuse(unknownMasterError(opened, [...answeredNull], [...notAsked, ...notSentinels], error));
    }
    answeredNull.clear();
    notAsked.clear();
    notSentinels.clear();
  };
  connection.on('sentinelError', onSentinelError);
  connection.on('node error', onNodeError);
  connection.on('error', onError);
  return () => {
    connection.off('sentinelError', onSentinelError);
    connection.off('node error', onNodeError);
    connection.off('error', onError);
  };
}

/**
 * The TopologyError for addresses given as sentinels that are Redis data
 * servers (they answer SENTINEL with "unknown command"), each said to be a
 * plain server or a cluster node when one INFO to it, within
 * {@link PROBE_MS}, tells which.
 */
async function notASentinelError(opened: OpenedConnection, connection: Redis, addresses: string[], cause: Error): Promise<TopologyError> {
  const kinds = await Promise.all(addresses.map(async (address) => `${address} (${(await dataServerKind(address, connection.options)) ?? 'a Redis data server'})`));
  return new TopologyError(
    opened.target,
    `${kinds.join(', ')} ${addresses.length === 1 ? 'is' : 'are'} not a Sentinel: ${addresses.length === 1 ? 'it answers' : 'they answer'} SENTINEL GET-MASTER-ADDR-BY-NAME with "unknown command"; connect to a plain server with redis://<host>:<port>, to a cluster with redis+cluster://<host>:<port>, and give redis+sentinel:// (or sentinels) the addresses of Sentinels`,
    { cause },
  );
}

/** "a plain server" or "a cluster node", from one INFO to `address` with the sentinels' credentials; undefined when it does not tell. */
async function dataServerKind(address: string, options: Redis['options']): Promise<string | undefined> {
  const colon = address.lastIndexOf(':');
  const probe = new Redis({
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    username: options.sentinelUsername,
    password: options.sentinelPassword,
    ...(options.enableTLSForSentinelMode ? { tls: options.sentinelTLS ?? {} } : {}),
    connectTimeout: PROBE_MS,
    commandTimeout: PROBE_MS,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined); // the answer, or none, is all that is wanted
  try {
    return /^cluster_enabled:1/m.test(await probe.info('cluster')) ? 'a cluster node' : 'a plain server';
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}

function unknownMasterError(opened: OpenedConnection, answeredNull: string[], notAsked: string[], cause: Error): TopologyError {
  const name = (opened.commands as Redis).options.name;
  const unreachable = notAsked.length === 0 ? '' : ` (${notAsked.join(', ')} could not be asked)`;
  return new TopologyError(
    opened.target,
    `no sentinel monitors a master named ${JSON.stringify(name)}: ${answeredNull.join(', ')} answered SENTINEL GET-MASTER-ADDR-BY-NAME that they know no such master${unreachable}; check the master name (the path of redis+sentinel://<host>:<port>/<master name>, or the name option)`,
    { cause },
  );
}
