import { IntracomError } from './IntracomError';

/**
 * Every live instance of the service refused the call because its handlers
 * were all busy and its queue was full (options `concurrency` and
 * `maxQueued`). The handler never ran, so retrying later is safe.
 */
export class ServiceBusyError extends IntracomError {
  /** The called service key or module name. */
  readonly service: string;
  /** The called function. */
  readonly functionName: string;

  constructor(target: string, functionName: string, instances: number) {
    super('ERR_SERVICE_BUSY', `"${target}" refused function "${functionName}": all ${instances} instance(s) tried were at their concurrency limit with a full queue (concurrency, maxQueued)`);
    this.service = target;
    this.functionName = functionName;
  }
}
