import { IntracomError } from './IntracomError';

/** What the remote side reported about the error its handler threw. */
export interface RemoteErrorInfo {
  /** The remote error's class name (`TypeError`, `NotFoundError`, ...). */
  name: string;
  /** The remote error's message. */
  message: string;
  /** The remote error's `code`, when it had a string one. */
  code?: string;
  /** The remote error's `data`, when it had one (any msgpack-able value). */
  data?: unknown;
}

/**
 * The remote handler threw (or rejected), or its result could not be sent.
 * Carries the remote error's name, message, code and data; `code` of this
 * error stays `ERR_REMOTE`, the remote one is `remoteCode`.
 */
export class RemoteError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The called function. */
  readonly functionName: string;
  /** The instance whose handler failed. */
  readonly instanceId: string;
  /** The remote error's class name. */
  readonly remoteName: string;
  /** The remote error's message. */
  readonly remoteMessage: string;
  /** The remote error's code, when any. */
  readonly remoteCode: string | undefined;
  /** The remote error's data, when any. */
  readonly data: unknown;

  constructor(target: string, functionName: string, instanceId: string, remote: RemoteErrorInfo) {
    super('ERR_REMOTE', `"${target}" function "${functionName}" failed on instance ${instanceId}: ${remote.name}: ${remote.message}`);
    this.service = target;
    this.functionName = functionName;
    this.instanceId = instanceId;
    this.remoteName = remote.name;
    this.remoteMessage = remote.message;
    this.remoteCode = remote.code;
    this.data = remote.data;
  }
}
