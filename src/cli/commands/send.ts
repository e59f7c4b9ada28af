/**
 * `intracom send <type> <service> <action> [query]`: a query of any type of
 * the integration layer from the shell. FIRE_AND_FORGET and BROADCAST print
 * the stored envelope's id; ASYNC prints the handle while PENDING, then once
 * settled; SYNC prints the result. Errors as for `call`.
 */
import type { Command } from 'commander';
import { Argument, InvalidArgumentError, Option } from 'commander';
import { QueryType, type Query } from '../../envelope/types';
import type { QueryHandle } from '../../queues/QueryRequests';
import { ExitCode, connect, interrupted, parseJsonArgument, toJson, type CliIO, type GlobalOptions } from '../context';
import { parseAction } from '../parse';

/** The query types, as the command takes them (case-insensitive). */
export const QUERY_TYPES = Object.values(QueryType);

function summary(query: Query): string {
  const parts = [`${query.type}`, `queryId=${query.queryId}`, `to=${query.serviceNameDest}`, `action=${String(query.action)}`, `state=${query.state}`];
  if (query.state === 'DONE' && query.type !== QueryType.FIRE_AND_FORGET && query.type !== QueryType.BROADCAST) parts.push(`result=${toJson(query.result)}`);
  return parts.join(' ');
}

/** The query type named on the command line, in any case; a usage error otherwise. */
export function parseQueryType(text: string): QueryType {
  const type = text.toUpperCase().replace(/-/g, '_') as QueryType;
  if (!QUERY_TYPES.includes(type)) throw new InvalidArgumentError(`type must be one of ${QUERY_TYPES.join(', ')}; received ${JSON.stringify(text)}`);
  return type;
}

/** Registers the command. */
export function registerSend(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('send')
    .description('send a query: FIRE_AND_FORGET and BROADCAST are stored durably; ASYNC shows PENDING then DONE; SYNC waits for the result')
    .addArgument(new Argument('<type>', `query type: ${QUERY_TYPES.join(', ')} (any case)`).argParser(parseQueryType))
    .argument('<service>', 'destination service key')
    .argument('<action>', 'action (a name, or an integer)')
    .argument('[query]', 'JSON parameters of the action', 'null')
    .addOption(new Option('--json', 'print the envelope as JSON'))
    .action(async (type: QueryType, service: string, actionText: string, queryText: string, options: { json?: boolean }, command: Command) => {
      const query = parseJsonArgument('query', queryText, null);
      const globals = command.optsWithGlobals<GlobalOptions>();
      const connection = await connect(globals, { rpc: true });
      const stop = interrupted();
      const controller = new AbortController();
      void stop.promise.then((signal) => controller.abort(new Error(`interrupted by ${signal}`)));
      const print = (envelope: Query): void => void io.stdout.write(`${options.json ? toJson(envelope) : summary(envelope)}\n`);
      try {
        const { rpc } = connection;
        const action = parseAction(actionText);
        if (type === QueryType.ASYNC) {
          const handle = rpc.sendAsync(service, action, query, { signal: controller.signal }) as QueryHandle;
          print({ ...handle });
          await handle.promise;
          print({ ...handle });
          if (handle.error) throw handle.error;
        } else if (type === QueryType.SYNC) {
          print(await rpc.send(type, service, action, query, { signal: controller.signal }));
        } else {
          print(await rpc.send(type, service, action, query));
        }
      } finally {
        stop.dispose();
        await connection.close();
      }
      done(ExitCode.OK);
    });
}
