/**
 * `intracom acl <user> [--capability ...] [--pattern ...]`: the Redis 7 ACL
 * rules of one service's user, as one `ACL SETUSER` line (the password left
 * as `<password>` unless INTRACOM_REDIS_PASSWORD is set) or, with `--json`,
 * the rules by kind. Needs no Redis.
 */
import type { Command } from 'commander';
import { ACL_CAPABILITIES, aclRules, aclSetUserLine, type AclCapability } from '../../../vars/acl';
import { CliError, ExitCode, type CliIO } from '../context';
import { PASSWORD_VARIABLE } from '../connection';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Registers the command. */
export function registerAcl(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('acl <user>')
    .description('print the Redis ACL rules of a service user (needs no Redis)')
    .option('--capability <name>', `what the service uses, repeatable: ${ACL_CAPABILITIES.join(', ')} (default: all but inspect)`, collect, [])
    .option('--pattern <glob>', 'a pattern the service psubscribes to (namespace-free), repeatable', collect, [])
    .option('--json', 'the rules by kind, as JSON')
    .action((user: string, options: { capability: string[]; pattern: string[]; json?: boolean }, command: Command) => {
      const { namespace } = command.optsWithGlobals<{ namespace: string }>();
      const unknown = options.capability.filter((c) => !(ACL_CAPABILITIES as readonly string[]).includes(c));
      if (unknown.length > 0) throw new CliError(`--capability must be among ${ACL_CAPABILITIES.join(', ')}; received ${JSON.stringify(unknown[0])}`, ExitCode.USAGE);
      const settings = {
        namespace,
        patterns: options.pattern,
        ...(options.capability.length > 0 ? { capabilities: options.capability as AclCapability[] } : {}),
      };
      try {
        if (options.json) io.stdout.write(`${JSON.stringify({ user, ...aclRules(settings) }, null, 2)}\n`);
        else io.stdout.write(`${aclSetUserLine(user, { ...settings, password: process.env[PASSWORD_VARIABLE] })}\n`);
      } catch (error) {
        throw new CliError((error as Error).message, ExitCode.USAGE);
      }
      done(ExitCode.OK);
    });
}
