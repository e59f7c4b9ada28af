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

  /**
   * @param instances The instances that refused the call busy.
   * @param elsewhere The other instances tried, which were gone or closing.
   */
  constructor(target: string, functionName: string, instances: number, elsewhere = 0) {
    const busy = elsewhere === 0 ? `all ${instances} instance(s) tried were` : `${instances} of the ${instances + elsewhere} instance(s) tried were`;
    const rest = elsewhere === 0 ? '' : `, the other ${elsewhere} gone or closing`;
    super('ERR_SERVICE_BUSY', `"${target}" refused function "${functionName}": ${busy} at their concurrency limit with a full queue (concurrency, maxQueued)${rest}`);
    this.service = target;
    this.functionName = functionName;
  }
}
