/**
 * The generated ACLs isolate services whose names nest: over pairs of
 * service names where one is a dotted prefix or extension of the other, or
 * the other's RPC topic (`web` and `web.rpc.admin`, `calc` and
 * `service.calc.rpc`, names with `rpc`, `reply`, `var`, `intracom`, `from...`
 * segments), with psubscribe patterns and catalogue topics that try to reach
 * the library's own channels, Redis itself (ACL DRYRUN under the generated
 * users) says that no rule of service A grants a channel or key of service B
 * that the deployment does not give A, while A keeps every one of its own.
 * Names with glob characters or braces are refused where they enter.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import Redis from 'ioredis';
import { serviceAcl, serviceAclLine, type AclDeployment } from '../../vars/acl';
import { nameProblem } from '../../vars/define';
import { Names } from '../../vars/names';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { ValidationError } from '../../src/errors/ValidationError';
import { startAclRedis, type AclRedis } from '../support/acl';
import { thrown } from '../support/async';

const word = fc.constantFrom('web', 'calc', 'a', 'rpc', 'reply', 'fromage', 'x-from', 'service', 'module', 'var', 'intracom', 'mutex', 'wake', 'events', 'messages', 'evil', 'admin', '_1');
const dotted = fc.array(word, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));
const valid = (name: string): boolean => nameProblem('service', name) === undefined;

/** Two different service names, the second derived from the first (or the reverse) as an attacker would choose it. */
const pair = fc
  .tuple(dotted, dotted, fc.constantFrom('extension', 'prefix', 'service topic', 'module topic', 'reply-like', 'any'))
  .map(([a, other, how]): [string, string] => {
    switch (how) {
      case 'extension':
        return [a, `${a}.${other}`];
      case 'prefix':
        return [`${a}.${other}`, a];
      case 'service topic':
        return [a, `service.${a}.rpc`];
      case 'module topic':
        return [a, `module.${a}.rpc`];
      case 'reply-like':
        return [a, `${a}.i1.from-x.${other}`];
      default:
        return [a, other];
    }
  })
  .filter(([a, b]) => a !== b && valid(a) && valid(b));

/** Patterns and topics a plan or catalogue may try; those that could match the library's own channels must be refused. */
const GLOBS = ['audit.*', 'module.*.events', 'service.*.messages', 'service.*', '*', '*.events', 'service.{*}.rpc.*', 'intracom.*', 'intra?om.*', '[i]ntracom.*', 'module.?*', 'websocket.user.*.events', 'a?c', '*}'];

/** The error `action` throws, or undefined. */
function attempt(action: () => unknown): unknown {
  try {
    action();
    return undefined;
  } catch (error) {
    return error;
  }
}

interface Resource {
  readonly what: string;
  readonly command: string[];
}

/** The channels and keys of service `s` (serving, called by `hub`, calling `hub`, owning `v`, taking mutex `lock-<s>`), each as one DRYRUN command per access. */
function resourcesOf(names: Names, s: string, caller: string): Resource[] {
  const topic = `service.${s}.rpc`;
  const channels = [
    names.rpcInstance(topic, 'i1', 'hub'),
    names.rpcInstance(topic, 'i1'),
    names.rpcReplies(s, 'i1', 'hub'),
    names.rpcReplies('hub', 'i1', s),
    names.variableChanged(s, 'v'),
    names.mutexWake('w1', `lock-${s}`),
  ];
  // a request channel of `caller` to s: granted only when the deployment lets caller call s
  if (caller !== 'hub') channels.push(names.rpcInstance(topic, 'i1', caller));
  const keys = [
    names.variable(s, 'v'),
    names.variable(s, 'v', 'k'),
    names.instanceSet(s),
    names.instanceSet(Names.rpcRegistry(topic)),
    names.instanceAnnouncements(Names.rpcRegistry(topic)),
    names.queryStream(s),
    names.queryClaims(s, 'workers'),
    names.deadLetters(s),
    names.mutex(`lock-${s}`),
  ];
  return [
    ...channels.map((channel) => ({ what: `channel ${channel}`, command: ['PUBLISH', channel, 'x'] })),
    ...keys.flatMap((key) => [
      { what: `read ${key}`, command: ['GET', key] },
      { what: `write ${key}`, command: ['SET', key, 'x'] },
    ]),
  ];
}

describe('security: generated ACLs isolate services whose names nest (property, checked by Redis with ACL DRYRUN)', function () {
  this.timeout(120_000);
  let acl: AclRedis;
  let admin: Redis;
  before(async () => {
    acl = await startAclRedis();
    admin = acl.admin;
  });
  after(async () => {
    await acl?.stop();
  });

  const allowed = async (user: string, command: string[]): Promise<boolean> => (await admin.call('ACL', 'DRYRUN', user, ...command)) === 'OK';

  for (const namespace of ['', 'ns']) {
    it(`no rule of A grants a channel or key of B${namespace === '' ? '' : ' (in a namespace)'}, and A keeps its own`, async () => {
      const names = new Names(namespace);
      await fc.assert(
        fc.asyncProperty(pair, fc.subarray(GLOBS, { maxLength: 3 }), async ([a, b], globs) => {
          // the globs no check refuses are granted to both services, as psubscribe patterns and as a catalogue topic
          const patterns = globs.filter((glob) => {
            const error = attempt(() => serviceAcl({ namespace, services: { [a]: { patterns: [glob] } } }, a));
            if (error !== undefined) expect(error, glob).to.be.instanceOf(ValidationError).and.have.property('message').that.match(/patterns entry must not match the library's own channels/);
            return error === undefined;
          });
          const plan = { calls: ['hub'], sends: ['hub'], patterns };
          const deployment: AclDeployment = {
            namespace,
            catalogue: { title: 't', vars: {}, topics: Object.fromEntries(patterns.map((glob, i) => [`t${i}`, { name: glob, payload: 'event', publishers: ['*'], subscribers: ['*'], description: 'd' }])) },
            services: {
              [a]: { ...plan, mutexes: [`lock-${a}`] },
              [b]: { ...plan, mutexes: [`lock-${b}`] },
              hub: { calls: [a, b] },
            },
          };
          await admin.call(...(serviceAclLine(deployment, a, { user: 'user-a', password: 'pw' }).split(' ') as [string, ...string[]]));
          await admin.call(...(serviceAclLine(deployment, b, { user: 'user-b', password: 'pw' }).split(' ') as [string, ...string[]]));
          for (const [user, own, other] of [['user-a', a, b], ['user-b', b, a]] as const) {
            for (const resource of resourcesOf(names, other, own)) {
              expect(await allowed(user, resource.command), `${own} must not reach ${other}'s ${resource.what}`).to.equal(false);
            }
            // the open request channel aside (a server under generated ACLs names its callers), everything of its own is granted
            for (const resource of resourcesOf(names, own, 'hub').filter((r) => r.what !== `channel ${names.rpcInstance(`service.${own}.rpc`, 'i1')}`)) {
              expect(await allowed(user, resource.command), `${own} keeps its ${resource.what}`).to.equal(true);
            }
          }
        }),
        { numRuns: 150 },
      );
    });
  }

  it('refuses names with glob characters or braces where they enter (generator and client), naming the option and value', () => {
    for (const bad of ['we*b', 'web?', 'web[a]', 'w{eb}', 'web}', 'web.*']) {
      expect(thrown(() => serviceAcl({ services: { [bad]: {} } }, bad)), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('service must be').and.include(JSON.stringify(bad));
      expect(thrown(() => serviceAcl({ services: { web: { calls: [bad] } } }, 'web')), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('calls entry must be');
      expect(thrown(() => serviceAcl({ services: { web: { modules: [bad] } } }, 'web')), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('modules entry must be');
      expect(thrown(() => new RedisRPCClient({ service: bad, redis: 'redis://127.0.0.1:1' })), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include(JSON.stringify(bad));
      expect(thrown(() => new RedisRPCClient({ service: 'web', callers: [bad], redis: 'redis://127.0.0.1:1' })), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('callers entry');
      expect(thrown(() => new RedisRPCClient({ service: 'web', instanceId: bad, redis: 'redis://127.0.0.1:1' })), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('instanceId');
      expect(thrown(() => serviceAcl({ services: { web: { reads: [`${bad}/v`] } } }, 'web')), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('reads entry owner');
      expect(thrown(() => serviceAcl({ services: { web: { reads: [`web/${bad}`] } } }, 'web')), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('reads entry name');
    }
    // a mutex glob is allowed (the mutexes a service takes), a brace is not: it would end the {mutex:<id>} tag early
    expect(serviceAcl({ services: { web: { mutexes: ['m*'] } } }, 'web').keys).to.include('~ic:{mutex:m*}:*');
    for (const bad of ['x}', '{y', 'a}:*']) expect(thrown(() => serviceAcl({ services: { web: { mutexes: [bad] } } }, 'web')), bad).to.be.instanceOf(ValidationError).and.have.property('message').that.include('mutexes entry');
  });
});
