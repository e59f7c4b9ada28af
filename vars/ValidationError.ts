import { IntracomError } from './IntracomError';

/**
 * Input was refused before anything was sent or stored: an invalid option, a
 * variable set with a value of the wrong type, a bad id. Nothing was changed.
 */
export class ValidationError extends IntracomError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_VALIDATION', message, options);
  }
}
