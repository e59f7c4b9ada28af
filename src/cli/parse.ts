/** Parsers of command-line values: a bad value is a usage error (exit code 2) naming the option. */
import { InvalidArgumentError } from 'commander';

/** A parser of a positive integer option (`--count`, `--timeout`). */
export function positiveIntegerOption(name: string): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive integer; received ${JSON.stringify(value)}`);
    }
    return parsed;
  };
}

/** A query action from the command line: a number when it is an integer, else the text. */
export function parseAction(text: string): number | string {
  return /^-?\d+$/.test(text) ? Number(text) : text;
}
