/**
 * Every channel and key built in vars/ names exactly one thing: two different
 * (kind, name, ...) tuples never give the same string, whatever valid names
 * are used (fast-check over names made of the characters that matter: dots,
 * dashes, and the words of the topic convention).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { defineVar, instanceIdProblem, nameProblem, segmentProblem } from '../../vars/define';
import { moduleEvents, moduleMessages, moduleRpc, Names, serviceEvents, serviceMessages, serviceRpc, websocketEvents } from '../../vars/names';

const word = fc.constantFrom('a', 'b', 'service', 'module', 'rpc', 'from', 'events', 'messages', 'workers', 'var', 'intracom', 'reply', 'x-1', '_');
const dotted = fc.array(word, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('.'));
const name = dotted.filter((n) => nameProblem('n', n) === undefined);
const segment = word.filter((n) => segmentProblem('n', n) === undefined);
const instanceId = word.filter((n) => instanceIdProblem('n', n) === undefined);

type Meaning = [kind: string, ...parts: string[]];

function channelsOf(names: Names, service: string, owner: string, variable: string, instance: string): Array<[string, Meaning]> {
  return [
    [names.variableChanged(owner, variable), ['variableChanged', owner, variable]],
    [names.rpcInstance(serviceRpc(service), instance), ['rpcInstance', 'service', service, instance]],
    [names.rpcInstance(moduleRpc(service), instance), ['rpcInstance', 'module', service, instance]],
    [names.rpcInstance(serviceRpc(service), instance, owner), ['rpcInstance', 'service', service, instance, 'from', owner]],
    [names.rpcReplies(service, instance, owner), ['rpcReplies', service, instance, owner]],
    [names.channel(serviceEvents(service)), ['serviceEvents', service]],
    [names.channel(serviceMessages(service)), ['serviceMessages', service]],
    [names.channel(moduleEvents(service)), ['moduleEvents', service]],
    [names.channel(moduleMessages(service)), ['moduleMessages', service]],
    [names.channel(websocketEvents('user', service)), ['websocketEvents', 'user', service]],
  ];
}

function keysOf(names: Names, service: string, variable: string, instance: string, param: string): Array<[string, Meaning]> {
  return [
    [names.variable(service, variable), ['variable', service, variable]],
    [names.variable(service, variable, param), ['variable', service, variable, param]],
    [names.instanceSet(service), ['instanceSet', service]],
    [names.instanceSet(Names.rpcRegistry(serviceRpc(service))), ['rpcRegistry', 'service', service]],
    [names.instanceSet(Names.rpcRegistry(moduleRpc(service))), ['rpcRegistry', 'module', service]],
    [names.queryStream(service), ['queryStream', service]],
    [names.broadcastStream(service), ['broadcastStream', service]],
    [names.deadLetters(service), ['deadLetters', service]],
    [names.processed(service, 'workers', 7), ['processed', service, 'workers']],
    [names.processed(service, instance, 7), ['processed', service, 'instance', instance]],
    [names.broadcastSeen(service, instance), ['broadcastSeen', service, instance]],
  ];
}

describe('names built in vars/', () => {
  it('never give one channel or key two meanings (property over valid names)', () => {
    const names = new Names('ns');
    const meanings = new Map<string, string>();
    fc.assert(
      fc.property(name, name, segment, instanceId, segment, (service, owner, variable, instance, param) => {
        for (const [built, meaning] of [...channelsOf(names, service, owner, variable, instance), ...keysOf(names, service, variable, instance, param)]) {
          const said = JSON.stringify(meaning);
          const before = meanings.get(built);
          if (before !== undefined && before !== said) throw new Error(`${built} means both ${before} and ${said}`);
          meanings.set(built, said);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a name with a `from` segment, which would split `.from.<service>` two ways', () => {
    expect(nameProblem('service', 'legacy.from.x')).to.match(/none of them "from"/);
    expect(nameProblem('service', 'fromage.x')).to.equal(undefined);
  });

  it('splits a variable change channel back into its owner and name', () => {
    fc.assert(
      fc.property(name, segment, (owner, variable) => {
        expect(Names.variableOfTopic(new Names().variableChanged(owner, variable))).to.deep.equal({ owner, name: variable });
      }),
    );
  });

  it("refuses the issue's colliding pair: owner TeraServer with the variable UserManagerModule.price", () => {
    expect(new Names().variableChanged('TeraServer.UserManagerModule', 'price')).to.equal('intracom.var.{TeraServer.UserManagerModule}.price');
    expect(() => defineVar({ name: 'UserManagerModule.price', type: 'number', owner: 'TeraServer', description: 'd' })).to.throw(/no dot.*"UserManagerModule.price"/);
    expect(segmentProblem('variable name', 'UserManagerModule.price')).to.match(/variable name must be/);
    expect(nameProblem('service', 'TeraServer.UserManagerModule')).to.equal(undefined);
    for (const bad of ['a..b', '.a', 'a.', '-a', 'a b', 'a:b', 'a{b', 'a*', '', 'x'.repeat(201)]) expect(nameProblem('service', bad), bad).to.be.a('string');
    for (const reserved of ['rpc', 'events', 'messages', 'workers']) expect(instanceIdProblem('instanceId', reserved)).to.match(/must not be one of/);
  });
});
