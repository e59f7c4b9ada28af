import { describeValue } from '../../vars/describe';
import { MAX_TIMER_MS } from '../envelope/validate';
import { ValidationError } from '../errors/ValidationError';

/**
 * A duration option, in ms, that feeds a timer (a timeout, an interval) or a
 * wait bounded by one: an integer from `min` to `max`, by default the longest
 * Node.js timer. A longer one would not wait: Node fires it after 1 ms (with
 * a TimeoutOverflowWarning), so an interval would run every millisecond.
 * `why` says where `max` comes from, for the message.
 */
export function timerMs(option: string, value: unknown, min: 0 | 1, max = MAX_TIMER_MS, why = 'the longest Node.js timer'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ValidationError(`${option} must be a ${min === 0 ? 'non-negative' : 'positive'} integer; received ${describeValue(value)}`);
  }
  if (value > max) throw new ValidationError(`${option} must be at most ${max} ms (${why}); received ${value}`);
  return value;
}
