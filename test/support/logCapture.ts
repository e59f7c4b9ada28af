/** A pino logger whose lines a test reads back. */
import pino from 'pino';

/** One line written, parsed. */
export interface Line {
  msg: string;
  suppressed?: number;
}

/** A logger at `warn` and the lines it wrote, parsed, in order. */
export function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'warn' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  return { logger, lines };
}
