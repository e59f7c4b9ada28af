import pino, { type Logger } from 'pino';
import { ValidationError } from '../../vars/ValidationError';
import { redactCredentials } from './redact';

/** The environment variable that sets the level of intracom's default logger. */
export const LOG_LEVEL_VARIABLE = 'INTRACOM_LOG_LEVEL';

/**
 * intracom's logger when the user gives none: pino on stderr (never mixed
 * into a program's stdout), at `INTRACOM_LOG_LEVEL` (unset or empty:
 * `fallbackLevel`), with credentials masked in logged errors.
 * Written synchronously, so the last lines before an exit are not lost.
 */
export function defaultLogger(fallbackLevel = 'warn', name = 'intracom'): Logger {
  const level = process.env[LOG_LEVEL_VARIABLE] || fallbackLevel;
  const levels = [...Object.keys(pino.levels.values), 'silent'];
  if (!levels.includes(level)) throw new ValidationError(`${LOG_LEVEL_VARIABLE} must be one of ${levels.join(', ')}; received ${JSON.stringify(level)}`);
  return pino({ name, level, serializers: { err: (error: unknown) => pino.stdSerializers.err(redactCredentials(error) as Error) } }, pino.destination({ dest: 2, sync: true }));
}

/**
 * Makes a logger of ours write nothing more: once an instance's close() has
 * returned, what it abandoned was listed in its last warning, and the late
 * failures of that abandoned work would only repeat it (or, worse, promise a
 * retry that will never come). A logger without a settable level is left as
 * it is.
 */
export function silence(logger: Logger): void {
  try {
    logger.level = 'silent';
  } catch {
    // not a pino logger: it keeps its own level
  }
}

/** Whether a logger writes `debug` lines: checked once, so that hot paths build no log fields otherwise. */
export function debugEnabled(logger: Logger): boolean {
  return typeof logger.isLevelEnabled === 'function' ? logger.isLevelEnabled('debug') : false;
}
