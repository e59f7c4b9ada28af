import type Redis from 'ioredis';
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
 *   ConnectionError (an outage).
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
  const onSentinelError = (error: Error): void => {
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
    if (answeredNull.size > 0 && answeredNull.size + notAsked.size >= sentinels) refuse(unknownMasterError(opened, [...answeredNull], [...notAsked], error));
    answeredNull.clear();
    notAsked.clear();
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

function unknownMasterError(opened: OpenedConnection, answeredNull: string[], notAsked: string[], cause: Error): TopologyError {
  const name = (opened.commands as Redis).options.name;
  const unreachable = notAsked.length === 0 ? '' : ` (${notAsked.join(', ')} could not be asked)`;
  return new TopologyError(
    opened.target,
    `no sentinel monitors a master named ${JSON.stringify(name)}: ${answeredNull.join(', ')} answered SENTINEL GET-MASTER-ADDR-BY-NAME that they know no such master${unreachable}; check the master name (the path of redis+sentinel://<host>:<port>/<master name>, or the name option)`,
    { cause },
  );
}
