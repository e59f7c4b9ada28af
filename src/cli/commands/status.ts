/**
 * `intracom status [--json]`: what runs in a namespace, read from Redis:
 * live instances per service (from the registry keys, found with SCAN), RPC
 * targets and their serving instances, the durable queues of each service
 * (depth, pending, age of the oldest, BROADCAST lag per instance, dead
 * letters), what each instance shed under overload and every held mutex with its owner.
 */
import type { Command } from 'commander';
import type { RedisClient } from '../../client/RedisClient';
import { RedisMutex } from '../../mutex/RedisMutex';
import type { MutexRecord } from '../../mutex/record';
import type { QueueInspection } from '../../queues/QueryQueues';
import type { RedisRPCClient } from '../../rpc/RedisRPCClient';
import { CLI_SERVICE, ExitCode, connect, toJson, type CliIO, type GlobalOptions } from '../context';

/** What `status --json` prints. */
export interface StatusReport {
  /** The namespace inspected ('' for none). */
  namespace: string;
  /** Services with a registry, by key, sorted. */
  services: Array<{
    service: string;
    /** `shed`: events dropped at a subscription's maxInFlight; `malformed`: frames that did not decode; `authRefused`: frames refused by authentication (since the instance started). */
    instances: Array<{ instanceId: string; host: string; pid: number; startedAt: string; version: string; shed: number; malformed: number; authRefused: number }>;
    /** The durable queues of the service; null when it has none. */
    queues: QueueInspection | null;
  }>;
  /** RPC targets (`service.<key>.rpc`, `module.<name>.rpc`) and how many instances serve them. */
  rpcTargets: Array<{ target: string; instances: number }>;
  /** Mutexes held now. */
  mutexes: MutexRecord[];
}

/** The registry owner of an RPC target (`Names.rpcRegistry`): `rpc:<topic>`. */
const RPC_TARGET = /^rpc:((?:service|module)\..+\.rpc)$/;

async function scanServices(client: RedisClient, kinds: string[]): Promise<Map<string, Set<string>>> {
  const found = new Map<string, Set<string>>();
  for (const kind of kinds) {
    for (const key of await client.route.keys(client.names.serviceScanPattern(kind))) {
      const service = client.names.serviceOfKey(key);
      if (service === undefined || service.startsWith('mutex:')) continue;
      let set = found.get(service);
      if (set === undefined) found.set(service, (set = new Set()));
      set.add(kind);
    }
  }
  return found;
}

/** Reads the status of a namespace. */
export async function readStatus(client: RedisClient, rpc: RedisRPCClient): Promise<StatusReport> {
  const found = await scanServices(client, ['instances', 'queries', 'broadcast', 'dead']);
  const names = [...found.keys()].sort();
  const services: StatusReport['services'] = [];
  const rpcTargets: StatusReport['rpcTargets'] = [];
  for (const name of names) {
    const kinds = found.get(name) as Set<string>;
    const rpcTarget = RPC_TARGET.exec(name);
    if (rpcTarget !== null) {
      rpcTargets.push({ target: rpcTarget[1], instances: (await client.route.liveInstances(name)).length });
      continue;
    }
    // CLI processes (this one, or a `watch` in another terminal) are tools, not services: listed only if something queued work for them
    if (name === CLI_SERVICE && !kinds.has('queries') && !kinds.has('broadcast') && !kinds.has('dead')) continue;
    const instances = (await client.instances(name))
      .filter((i) => !(i.service === CLI_SERVICE && i.instanceId === client.instanceId))
      .map((i) => ({ instanceId: i.instanceId, host: i.host, pid: i.pid, startedAt: new Date(i.startedAt).toISOString(), version: i.version, shed: i.load?.shed ?? 0, malformed: i.load?.malformed ?? 0, authRefused: i.load?.authRefused ?? 0 }))
      .sort((a, b) => (a.instanceId < b.instanceId ? -1 : 1));
    const queues = kinds.has('queries') || kinds.has('broadcast') || kinds.has('dead') ? await rpc.queueStatus(name) : null;
    services.push({ service: name, instances, queues });
  }
  const mutex = new RedisMutex({ redis: client });
  let mutexes: MutexRecord[];
  try {
    mutexes = await mutex.list();
  } finally {
    await mutex.close();
  }
  return { namespace: client.names.namespace, services, rpcTargets, mutexes };
}

function table(rows: string[][]): string[] {
  const widths = rows.reduce((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [] as number[]);
  return rows.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i])).join('  ')}`.trimEnd());
}

/** The report as text. */
export function formatStatus(report: StatusReport): string {
  const lines: string[] = [`namespace: ${report.namespace === '' ? '(none)' : report.namespace}`, ''];
  lines.push(`services (${report.services.length})`);
  if (report.services.length > 0) {
    lines.push(
      ...table([
        ['service', 'instances', 'queue depth', 'pending', 'oldest', 'broadcast lag', 'dead letters'],
        ...report.services.map(({ service, instances, queues }) => [
          service,
          String(instances.length),
          queues ? String(queues.fireAndForget.depth) : '-',
          queues ? String(queues.fireAndForget.pending) : '-',
          queues ? `${Math.round(queues.fireAndForget.oldestAgeMs / 100) / 10} s` : '-',
          queues && queues.broadcast.instances.length > 0 ? queues.broadcast.instances.map((i) => `${i.instanceId.slice(0, 8)}:${i.lag ?? '?'}`).join(' ') : '-',
          queues ? `${queues.deadLetters}${queues.deadLettersDropped > 0 ? ` (+${queues.deadLettersDropped} dropped)` : ''}` : '-',
        ]),
      ]),
    );
  }
  lines.push('', 'instances');
  const instanceRows = report.services.flatMap(({ service, instances }) =>
    instances.map((i) => [service, i.instanceId, `${i.host}:${i.pid}`, `since ${i.startedAt}`, `v${i.version}`, `shed ${i.shed}`, `malformed ${i.malformed}`, `unauthenticated ${i.authRefused}`]),
  );
  lines.push(...(instanceRows.length > 0 ? table(instanceRows) : ['  (none live)']));
  lines.push('', 'rpc targets');
  lines.push(...(report.rpcTargets.length > 0 ? table(report.rpcTargets.map((t) => [t.target, `${t.instances} instance${t.instances === 1 ? '' : 's'}`])) : ['  (none)']));
  lines.push('', 'mutexes held');
  lines.push(
    ...(report.mutexes.length > 0
      ? table(report.mutexes.map((m) => [m.mutexId, `by ${m.takenBy ?? '?'}`, `since ${m.takenAt ?? '?'}`, `expires in ${m.expiresInMs ?? '?'} ms`, m.fence === null ? '' : `fence ${m.fence}`]))
      : ['  (none)']),
  );
  return lines.join('\n');
}

/** Registers the command. */
export function registerStatus(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('status')
    .description('live instances per service, queue depth, pending, lag and dead letters per service, held mutexes with owners')
    .option('--json', 'print the report as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const connection = await connect(command.optsWithGlobals<GlobalOptions>(), { rpc: false });
      try {
        const report = await readStatus(connection.client, connection.rpc);
        io.stdout.write(`${options.json ? toJson(report, 2) : formatStatus(report)}\n`);
      } finally {
        await connection.close();
      }
      done(ExitCode.OK);
    });
}
