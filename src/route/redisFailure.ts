import { IntracomError } from '../errors/IntracomError';
import { PermissionError } from '../errors/PermissionError';
import { RedisUnavailableError } from '../errors/RedisUnavailableError';
import { TopologyError } from '../errors/TopologyError';

/**
 * Replies by which Redis says it cannot run commands now, before running
 * this one: a cluster without a master for the slot, a slot being moved, a
 * dataset loading, a replica without its master, a script running too long,
 * a replica (after a failover) refusing a write.
 */
const NOT_NOW = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|BUSY|READONLY)\b/;

/** True when ioredis refused to send (no offline queue while disconnected): nothing left the process. */
export function notSent(error: unknown): boolean {
  return error instanceof Error && /Stream isn't writeable|enableOfflineQueue options is false/.test(error.message);
}

/**
 * The reply Redis gave, when `error` is one: an ioredis ReplyError, or a
 * Cluster's "Too many Cluster redirections" that names the last reply.
 */
function replyOf(error: Error): string | undefined {
  if (error.name === 'ReplyError') return error.message;
  return /^Too many Cluster redirections\. Last error: (?:ReplyError: )?(.*)$/s.exec(error.message)?.[1];
}

/**
 * What a failed Redis command rejects with, named after `operation`
 * (`publish to "ns.news"`, `P "schema-init"`): never a raw ioredis error for
 * a failure the caller can act on.
 *
 * - an ACL refusal (`NOPERM`, a script's "can't run this command"):
 *   PermissionError; Redis checked before running anything the refused
 *   command would have done;
 * - `MOVED`/`ASK` on a one-server connection: TopologyError (it reached a
 *   Cluster node; nothing was applied);
 * - `CLUSTERDOWN`, `TRYAGAIN`, `LOADING`, `MASTERDOWN`, `BUSY`, `READONLY`,
 *   a Cluster that kept redirecting, or a command ioredis refused to send:
 *   RedisUnavailableError with `applied: false`;
 * - any other connection failure: RedisUnavailableError, the outcome
 *   unknown;
 * - Redis's other error replies (`WRONGTYPE`, ...) and intracom's own
 *   errors pass as they are.
 */
export function redisFailure(operation: string, error: unknown, target: string): unknown {
  if (error instanceof IntracomError || !(error instanceof Error)) {
    return error instanceof IntracomError ? error : new RedisUnavailableError(operation, String(error));
  }
  if (PermissionError.isRefusal(error)) return PermissionError.from(operation, error);
  const reply = replyOf(error);
  if (reply !== undefined) {
    if (error.name === 'ReplyError' && /^(MOVED|ASK) /.test(reply)) {
      return new TopologyError(target, `it answered ${operation} with "${reply}": it is a Redis Cluster node (connect with redis+cluster://, { cluster: [seeds] } or an ioredis Cluster); nothing was applied`, { cause: error });
    }
    if (NOT_NOW.test(reply) || error.name !== 'ReplyError') return new RedisUnavailableError(operation, reply, { cause: error, applied: false });
    return error; // Redis ran the command and answered with an error of its own
  }
  if (notSent(error)) return new RedisUnavailableError(operation, `the connection is down and the command was not sent: ${error.message}`, { cause: error, applied: false });
  return new RedisUnavailableError(operation, error.message, { cause: error });
}
