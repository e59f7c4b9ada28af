/**
 * `intracom acl <user> [--plan file.json] [--capability ...] [--pattern ...] [--cluster]`:
 * the Redis 7 ACL rules of one service's user, as one `ACL SETUSER` line (the
 * password left as `<password>` unless INTRACOM_REDIS_PASSWORD is set) or,
 * with `--json`, the rules by kind. With `--plan`, least privilege from a
 * deployment (what each service reads, calls, sends to, serves and locks);
 * without, the namespace-wide rules. Needs no Redis.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ACL_CAPABILITIES, aclRules, aclSetUserLine, serviceAcl, serviceAclLine, type AclCapability, type AclDeployment } from '../../../vars/acl';
import { CliError, ExitCode, type CliIO } from '../context';
import { PASSWORD_VARIABLE } from '../connection';

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Reads a deployment file: `{ "namespace"?, "cluster"?, "services": { "<service>": { "reads": ["owner/name"], "calls": [...], ... } } }`. */
function readPlan(path: string, namespace: string, cluster: boolean): AclDeployment {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new CliError(`--plan ${JSON.stringify(path)} is not a readable JSON file: ${(error as Error).message}`, ExitCode.USAGE);
  }
  const plan = parsed as Partial<AclDeployment> | null;
  if (typeof plan !== 'object' || plan === null || typeof plan.services !== 'object' || plan.services === null) {
    throw new CliError(`--plan ${JSON.stringify(path)} must hold an object with "services" (service key -> plan); received ${JSON.stringify(parsed)?.slice(0, 80)}`, ExitCode.USAGE);
  }
  return { ...plan, services: plan.services, namespace: plan.namespace ?? namespace, cluster: plan.cluster ?? cluster };
}

/** Registers the command. */
export function registerAcl(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('acl <user>')
    .description('print the Redis ACL rules of a service user (needs no Redis)')
    .option('--plan <file>', 'a deployment as JSON: least-privilege rules for the service <user> (docs/security.md)')
    .option('--capability <name>', `without --plan: what the service uses, repeatable: ${ACL_CAPABILITIES.join(', ')} (default: all but inspect and cluster)`, collect, [])
    .option('--pattern <glob>', 'without --plan: a pattern the service psubscribes to (namespace-free), repeatable', collect, [])
    .option('--cluster', 'a Redis Cluster: hash-tagged channels and the cluster commands')
    .option('--json', 'the rules by kind, as JSON')
    .action((user: string, options: { plan?: string; capability: string[]; pattern: string[]; cluster?: boolean; json?: boolean }, command: Command) => {
      const { namespace } = command.optsWithGlobals<{ namespace: string }>();
      const password = process.env[PASSWORD_VARIABLE];
      if (options.plan !== undefined) {
        const deployment = readPlan(options.plan, namespace, options.cluster === true);
        try {
          if (options.json) io.stdout.write(`${JSON.stringify({ user, ...serviceAcl(deployment, user) }, null, 2)}\n`);
          else io.stdout.write(`${serviceAclLine(deployment, user, { password })}\n`);
        } catch (error) {
          throw new CliError((error as Error).message, ExitCode.USAGE);
        }
        done(ExitCode.OK);
        return;
      }
      const unknown = options.capability.filter((c) => !(ACL_CAPABILITIES as readonly string[]).includes(c));
      if (unknown.length > 0) throw new CliError(`--capability must be among ${ACL_CAPABILITIES.join(', ')}; received ${JSON.stringify(unknown[0])}`, ExitCode.USAGE);
      const chosen = options.capability.length > 0 ? (options.capability as AclCapability[]) : undefined;
      const capabilities = options.cluster === true ? [...(chosen ?? ACL_CAPABILITIES.filter((c) => c !== 'inspect' && c !== 'cluster')), 'cluster' as const] : chosen;
      const settings = { namespace, patterns: options.pattern, ...(capabilities !== undefined ? { capabilities } : {}) };
      try {
        if (options.json) io.stdout.write(`${JSON.stringify({ user, ...aclRules(settings) }, null, 2)}\n`);
        else io.stdout.write(`${aclSetUserLine(user, { ...settings, password })}\n`);
      } catch (error) {
        throw new CliError((error as Error).message, ExitCode.USAGE);
      }
      done(ExitCode.OK);
    });
}
