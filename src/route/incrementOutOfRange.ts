import { ValidationError } from '../errors/ValidationError';

/**
 * The refusal of an increment whose result would leave the safe integers
 * (both routes), naming `subject` (the key; RedisClient names the variable
 * instead) and the exact value it would have reached.
 */
export function incrementOutOfRange(subject: string, by: number, reached: string): ValidationError {
  return new ValidationError(`increment of ${subject} by ${by} would make it ${reached}, outside the safe integers ±${Number.MAX_SAFE_INTEGER} (a JavaScript number cannot hold it exactly): refused, nothing changed`);
}

/** The value a refusal made by {@link incrementOutOfRange} names, or undefined for another error. */
export function reachedOf(error: unknown): string | undefined {
  return error instanceof ValidationError ? /^increment of .* would make it (-?\d+), outside the safe integers/s.exec(error.message)?.[1] : undefined;
}
