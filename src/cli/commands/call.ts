/**
 * `intracom call <service> <function> [args] [--module]`: one RPC from the
 * shell. `args` is a JSON array of the arguments (default `[]`). The result
 * is printed as JSON on stdout; an error as `ClassName: message` on stderr,
 * with the exit code of its class (see docs/cli.md).
 */
import type { Command } from 'commander';
import { CliError, ExitCode, connect, interrupted, parseJsonArgument, toJson, type CliIO, type GlobalOptions } from '../context';

/** Registers the command. */
export function registerCall(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('call')
    .description('call a function of a service (or, with --module, of a module) on one live instance and print the result as JSON')
    .argument('<service>', 'service key (or module name with --module)')
    .argument('<function>', 'function name')
    .argument('[args]', 'JSON array of the arguments', '[]')
    .option('-m, --module', 'call a module (module.<name>.rpc) instead of a service (service.<key>.rpc)')
    .action(async (target: string, fn: string, argsText: string, options: { module?: boolean }, command: Command) => {
      const args = parseJsonArgument('args', argsText, []);
      if (!Array.isArray(args)) throw new CliError(`args must be a JSON array of the arguments, such as '[1, 2]'; received ${argsText}`, ExitCode.USAGE);
      const globals = command.optsWithGlobals<GlobalOptions>();
      const connection = await connect(globals, { rpc: true });
      const stop = interrupted();
      const controller = new AbortController();
      void stop.promise.then((signal) => controller.abort(new Error(`interrupted by ${signal}`)));
      try {
        const calls = connection.rpc.with({ signal: controller.signal });
        const result = await (options.module ? calls.call(target, fn, ...args) : calls.callService(target, fn, ...args));
        io.stdout.write(`${toJson(result, 2)}\n`);
      } finally {
        stop.dispose();
        await connection.close();
      }
      done(ExitCode.OK);
    });
}
