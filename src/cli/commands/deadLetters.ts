/**
 * `intracom dead-letters list <service>` and `intracom dead-letters replay
 * <service> [ids...]`: the durable queries of a service that were given up
 * (handler failed `maxAttempts` times, no handler, expired, malformed), and
 * putting them back on their queue with a fresh attempt count, with a
 * progress indicator.
 */
import type { Command } from 'commander';
import type { DeadLetter } from '../../queues/QueueConsumer';
import { CliError, ExitCode, connect, toJson, type CliIO, type GlobalOptions } from '../context';
import { positiveIntegerOption } from '../parse';

function table(rows: string[][]): string[] {
  const widths = rows.reduce((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [] as number[]);
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ').trimEnd());
}

/** Dead letters as a text table. */
export function formatDeadLetters(service: string, letters: DeadLetter[]): string {
  if (letters.length === 0) return `no dead letters for ${service}`;
  return [
    `${letters.length} dead letter${letters.length === 1 ? '' : 's'} for ${service}`,
    ...table([
      ['id', 'reason', 'attempts', 'type', 'action', 'queryId', 'failed at', 'detail'],
      ...letters.map((l) => [
        l.id,
        l.reason,
        String(l.attempts),
        l.query?.type ?? '-',
        l.query ? String(l.query.action) : '-',
        l.query?.queryId ?? '-',
        new Date(l.failedAt).toISOString(),
        l.detail,
      ]),
    ]),
  ].join('\n');
}

/** A progress indicator on a stream: a redrawn bar on a terminal, a line per step (at most ~20) otherwise. */
export function progressReporter(stream: CliIO['stderr'], label: string): (done: number, total: number) => void {
  let lastShown = -1;
  return (done, total) => {
    if (stream.isTTY) {
      const width = 24;
      const filled = Math.round((done / Math.max(total, 1)) * width);
      stream.write(`\r${label} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
      return;
    }
    const step = Math.max(1, Math.ceil(total / 20));
    if (done === total || done - lastShown >= step) {
      lastShown = done;
      stream.write(`${label} ${done}/${total}\n`);
    }
  };
}

/** Registers the command and its two subcommands. */
export function registerDeadLetters(program: Command, io: CliIO, done: (code: number) => void): void {
  const group = program.command('dead-letters').description('list or replay the dead letters of a service');
  group
    .command('list')
    .description('list the dead letters of a service, oldest first')
    .argument('<service>', 'service key')
    .option('-n, --count <n>', 'at most this many', positiveIntegerOption('--count'), 100)
    .option('--json', 'print them as JSON')
    .action(async (service: string, options: { count: number; json?: boolean }, command: Command) => {
      const connection = await connect(command.optsWithGlobals<GlobalOptions>(), { rpc: false });
      try {
        const letters = await connection.rpc.deadLetters(service, options.count);
        io.stdout.write(`${options.json ? toJson(letters, 2) : formatDeadLetters(service, letters)}\n`);
      } finally {
        await connection.close();
      }
      done(ExitCode.OK);
    });
  group
    .command('replay')
    .description('put dead letters back on their queue with a fresh attempt count: all of them, or the given ids')
    .argument('<service>', 'service key')
    .argument('[ids...]', 'dead-letter ids (from `dead-letters list`); all when none')
    .action(async (service: string, ids: string[], _options: unknown, command: Command) => {
      const connection = await connect(command.optsWithGlobals<GlobalOptions>(), { rpc: false });
      try {
        const { rpc } = connection;
        const wanted = ids.length > 0 ? ids : undefined;
        if (wanted) {
          const present = new Set((await rpc.deadLetters(service, 10_000)).map((l) => l.id));
          const missing = wanted.filter((id) => !present.has(id));
          if (missing.length > 0) throw new CliError(`no dead letter of ${service} has the id${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`, ExitCode.FAILED, 'ValidationError');
        }
        const replayed = await rpc.replayDeadLetters(service, wanted, progressReporter(io.stderr, 'replaying'));
        io.stdout.write(`replayed ${replayed} dead letter${replayed === 1 ? '' : 's'} of ${service}\n`);
      } finally {
        await connection.close();
      }
      done(ExitCode.OK);
    });
}
