/**
 * The conformance suites run with every service under its generated
 * least-privilege ACL user (serviceAclLine) on a private Redis 7 with the
 * `default` user off: the same suites as on the plain redis route, through
 * the same harness interface, with users instead of the superuser. Here: the
 * route and stream suites and the RPC suite. The query-type suite
 * (test/queries/conformance.test.ts) and the mutex suites
 * (test/mutex/basics.test.ts, handover.test.ts, processes.test.ts, the
 * hand-over between processes included) add the same ACL target to the
 * deployments they run on.
 */
import { callersOf, serviceAclLine, type AclDeployment, type ServicePlan } from '../../vars/acl';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { rpcBehaviour } from '../rpc/behaviour';
import { routeConformance } from '../route/conformance';
import { streamConformance } from '../route/stream-conformance';
import { aclHarness } from '../route/harnesses';
import { startAclRedis, type AclRedis } from '../support/acl';

/** The services the RPC suite creates; each may call every one of them (the module included). */
const RPC_SERVICES = ['TeraServer', 'admin', 'burst', 'calc', 'even', 'foreign', 'intruder', 'mute', 'mute2', 'other', 'percall', 'shop', 'spread', 'stuck', 'watcher', 'web', 'nobody-home'];
const MODULE = 'TeraServer.UserManagerModule';

function rpcDeployment(namespace: string): AclDeployment {
  const module = (name: string) => ({ scope: 'module' as const, name, topic: `module.${name}.rpc`, functions: {} });
  const plan: ServicePlan = { calls: [...RPC_SERVICES, module(MODULE), module('TeraServer.Other')], sends: RPC_SERVICES, publishes: ['module.test.events'], subscribes: ['module.test.events'] };
  const services: Record<string, ServicePlan> = {};
  for (const service of RPC_SERVICES) services[service] = service === 'TeraServer' ? { ...plan, modules: [MODULE] } : plan;
  return { namespace, services };
}

// the route suites, under the generated user of one service whose plan declares the suite's channels and patterns
routeConformance('redis under a generated ACL user', aclHarness);
streamConformance('redis under a generated ACL user', aclHarness);

describe('the conformance suites under generated least-privilege ACL users', () => {
  let acl: AclRedis;
  before(async () => {
    acl = await startAclRedis();
  });
  after(async () => {
    await acl?.stop();
  });

  let run = 0;
  rpcBehaviour('redis under generated ACLs', async () => {
    const namespace = `aclr${run++}`;
    const deployment = rpcDeployment(namespace);
    // one user per service and run: the rules of this run's namespace
    for (const service of RPC_SERVICES) await acl.setUser(serviceAclLine(deployment, service, { user: `${service}-${namespace}`, password: `${service}-${namespace}-pw` }));
    const made: RedisRPCClient[] = [];
    return {
      restricted: true,
      async make(service, options = {}) {
        const client = new RedisRPCClient({ service, redis: acl.url(`${service}-${namespace}`), namespace, callers: callersOf(deployment, service), ...options });
        made.push(client);
        await client.connect();
        return client;
      },
      async cleanup() {
        await Promise.all(made.map((client) => client.close()));
      },
    };
  });
});
