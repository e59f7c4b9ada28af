/** The functions the RPC test peer serves, declared once for its handlers and for the typed calls of the tests. */
import { defineFunctions, schema } from '../../../vars/functions';

export const PeerFunctions = defineFunctions(
  { service: 'rpc-peer' },
  {
    whoami: { args: [schema.integer()], result: schema.object({ i: schema.integer(), instanceId: schema.string() }), description: 'Which instance answered call i' },
    fail: { args: [], result: schema.void(), description: 'Always throws a RangeError with a code and data' },
    sleep: { args: [schema.integer()], result: schema.string(), description: 'Answers after ms, unless its signal fires' },
    idempotentSleep: { args: [schema.integer()], result: schema.string(), idempotent: true, description: 'Answers after ms; safe to retry' },
  },
);
