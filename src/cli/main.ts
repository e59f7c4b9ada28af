#!/usr/bin/env node
/**
 * The `intracom` command-line tool: the catalogue, live traffic, calls and
 * queries from the shell, the status of a deployment and its dead letters.
 * One command per file under `commands/`; see docs/cli.md.
 *
 * Exit codes: 0 success, 2 bad arguments, 3 Redis unreachable, 4-10 the
 * error class of a failed call or query, 1 anything else (see {@link ExitCode}).
 */
import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../version';
import { registerAcl } from './commands/acl';
import { registerCall } from './commands/call';
import { registerCatalogue } from './commands/catalogue';
import { registerDeadLetters } from './commands/deadLetters';
import { registerSend } from './commands/send';
import { registerStatus } from './commands/status';
import { registerWatch } from './commands/watch';
import { ExitCode, defaultRedisUrl, describeError, exitCodeOf, usageLine, type CliIO } from './context';
import { positiveIntegerOption } from './parse';

/** The default `--timeout`, in ms. */
export const DEFAULT_CLI_TIMEOUT_MS = 5000;

/** Builds the program; `done` receives the exit code of the command that ran. */
export function buildProgram(io: CliIO, done: (code: number) => void): Command {
  const program = new Command('intracom');
  program
    .description('Inspect and poke a system of services talking over Redis with intracom.')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--redis <url>', 'Redis URL').default(defaultRedisUrl(), 'REDIS_URL, else redis://127.0.0.1:6379'))
    .option('--user <name>', 'Redis ACL user (the password is read from INTRACOM_REDIS_PASSWORD, or the URL)')
    .option('--tls-ca <file>', 'PEM file of the CA that signed the Redis server certificate (implies TLS)')
    .option('--tls-cert <file>', 'PEM client certificate, for servers that require one (mutual TLS)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--namespace <namespace>', 'namespace prefix of keys and channels (as given to the clients)', '')
    .option('--timeout <ms>', 'timeout of connecting, of a call and of a query, in ms', positiveIntegerOption('--timeout'), DEFAULT_CLI_TIMEOUT_MS)
    // descriptions wrapped to the terminal's width, at most 80 columns (80 when not a terminal)
    .configureHelp({ helpWidth: Math.min(80, (io.stdout as { columns?: number }).columns ?? 80), minWidthToWrap: 20 })
    .configureOutput({ writeOut: (text) => void io.stdout.write(text), writeErr: (text) => void io.stderr.write(usageLine(text)) })
    .showHelpAfterError('(intracom --help shows the usage)')
    .exitOverride();
  registerCatalogue(program, io, done);
  registerWatch(program, io, done);
  registerCall(program, io, done);
  registerSend(program, io, done);
  registerStatus(program, io, done);
  registerDeadLetters(program, io, done);
  registerAcl(program, io, done);
  return program;
}

/**
 * Runs the CLI on `argv` (the arguments after the program name) and
 * resolves with the exit code; never throws.
 */
export async function runCli(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let code: number = ExitCode.OK;
  const program = buildProgram(io, (c) => (code = c));
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.USAGE;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    io.stderr.write(`intracom: ${describeError(error)}\n`);
    return exitCodeOf(error);
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`intracom: ${describeError(error)}\n`);
      process.exit(ExitCode.FAILED);
    },
  );
}
