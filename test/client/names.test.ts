/**
 * Names and secrets (issue 11): every key and channel names one thing, a
 * watcher is given only its own variable's values, and a secret variable's
 * value never leaves in a change event. On both routes.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisClient, type VariableChange } from '../../src/client/RedisClient';
import type { RedisClientOptions } from '../../src/client/RedisClientOptions';
import { MalformedMessageError, ValidationError } from '../../src/errors/index';
import { encodeFrame, MsgpackCodec, PROTOCOL_VERSION } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { classify } from '../../src/cli/commands/watch';
import { defineVar } from '../../vars/define';
import type { VarDefinition } from '../../vars/types';
import { RedisVars } from '../../vars/RedisVars';
import { startRedis, type TestRedis } from '../support/redis-server';
import { rejection, until } from '../support/async';

interface RouteUnderTest {
  options(service: string, extra?: Partial<RedisClientOptions>): RedisClientOptions;
  injectRaw(channel: string, bytes: Buffer): Promise<void>;
  dispose(): Promise<void>;
}

const codec = new MsgpackCodec();

async function memoryRoute(): Promise<RouteUnderTest> {
  const bus = new MemoryBus();
  return {
    options: (service, extra) => ({ service, route: 'memory', memoryBus: bus, ...extra }),
    injectRaw: async (channel, bytes) => void bus.publish(channel, bytes),
    dispose: async () => undefined,
  };
}

async function redisRoute(): Promise<RouteUnderTest> {
  const redis: TestRedis = await startRedis();
  const raw = new Redis(redis.url);
  return {
    options: (service, extra) => ({ service, redis: redis.url, namespace: redis.namespace, ...extra }),
    injectRaw: async (channel, bytes) => void (await raw.publish(channel, bytes)),
    dispose: async () => {
      raw.disconnect();
      await redis.stop();
    },
  };
}

/** A MessagePack str, written by hand as docs/protocol.md describes it (fixstr or str 8). */
function mpStr(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([bytes.length < 32 ? Buffer.from([0xa0 | bytes.length]) : Buffer.from([0xd9, bytes.length]), bytes]);
}

/**
 * A variable change frame `[4, {headers, payload: {key: nil, value, deleted: false}}]`
 * built byte by byte per docs/protocol.md, with `value` already encoded (as a
 * foreign encoder writes it), so no intracom encoder picks the integer format.
 */
function foreignChangeFrame(topic: string, value: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([0x92, PROTOCOL_VERSION, 0x82]),
    mpStr('headers'),
    Buffer.from([0x83]),
    mpStr('name'),
    mpStr(topic),
    mpStr('createdAt'),
    mpStr('2026-01-01T00:00:00.000Z'),
    mpStr('serviceName'),
    mpStr('py'),
    mpStr('payload'),
    Buffer.from([0x83]),
    mpStr('key'),
    Buffer.from([0xc0]),
    mpStr('value'),
    value,
    mpStr('deleted'),
    Buffer.from([0xc2]),
  ]);
}

/** The payloads of one message as the route hands it over (an event or an event batch). */
function payloadsOf(message: unknown): unknown[] {
  const event = message as { payload?: unknown; payloads?: unknown[] };
  return event.payloads ?? [event.payload];
}

for (const [routeName, setup] of [
  ['memory', memoryRoute],
  ['redis', redisRoute],
] as const) {
  describe(`names and secrets on the ${routeName} route`, function () {
    let route: RouteUnderTest;
    let clients: RedisClient[];
    const client = async (service: string, extra?: Partial<RedisClientOptions>): Promise<RedisClient> => {
      const created = new RedisClient(route.options(service, extra));
      clients.push(created);
      await created.connect();
      return created;
    };
    before(async () => {
      route = await setup();
    });
    after(async () => route.dispose());
    beforeEach(() => {
      clients = [];
    });
    afterEach(async () => {
      await Promise.all(clients.map((c) => c.close()));
    });

    it('keeps OpenTera dotted owners usable, and a watcher gets only its own variable (the issue\'s collision)', async () => {
      const price = defineVar({ name: 'price', type: 'string', owner: 'TeraServer.UserManagerModule', description: 'a price as text' });
      // the other half of the old collision cannot be declared: a variable name has no dot
      expect(() => defineVar({ name: 'UserManagerModule.price', type: 'number', owner: 'TeraServer', description: 'a number' })).to.throw(/variable name .*no dot.*"UserManagerModule.price"/);
      const handMade = { name: 'UserManagerModule.price', type: 'number', owner: 'TeraServer', keyed: false, description: 'built without defineVar' } as VarDefinition<'number', false>;
      const [writer, watcher] = [await client('TeraServer.UserManagerModule'), await client('web')];
      const error = await rejection(watcher.watch(handMade, () => undefined));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/variable name must be .*"UserManagerModule.price"/);
      expect(await rejection(watcher.set(handMade, 5))).to.be.instanceOf(ValidationError);
      const sameOwnerNumber = defineVar({ name: 'UserManagerModule_price', type: 'number', owner: 'TeraServer', description: 'a number' });
      const numbers: unknown[] = [];
      const texts: unknown[] = [];
      await watcher.watch(sameOwnerNumber, (change) => void numbers.push(change.value));
      await watcher.watch(price, (change) => void texts.push(change.value));
      await writer.set(price, 'ten');
      await writer.set(sameOwnerNumber, 7);
      await until(() => texts.length === 1 && numbers.length === 1, 5000, 'both changes');
      expect(texts).to.deep.equal(['ten']);
      expect(numbers).to.deep.equal([7]);
    });

    it('gives a watcher only values of its variable\'s type: a foreign change of the wrong type or key shape is counted and skipped', async () => {
      const [writer, watcher] = [await client('ops'), await client('web')];
      const ratio = defineVar({ name: 'Ratio', type: 'number', owner: 'ops', description: 'a ratio' });
      const seen: Array<VariableChange<number>> = [];
      const malformed: MalformedMessageError[] = [];
      watcher.on('malformed', (e: MalformedMessageError) => malformed.push(e));
      await watcher.watch(ratio, (change) => void seen.push(change));
      const channel = watcher.names.variableChanged('ops', 'Ratio');
      const headers = { name: 'intracom.var.ops.Ratio', createdAt: new Date().toISOString(), serviceName: 'foreign' };
      await route.injectRaw(channel, encodeFrame(codec, [{ headers, payload: { key: null, value: 'a string', deleted: false } }]));
      await route.injectRaw(channel, encodeFrame(codec, [{ headers, payload: { key: 'k', value: 1, deleted: false } }]));
      await writer.set(ratio, 0.5);
      await until(() => seen.length === 1, 5000, 'the valid change');
      expect(seen.map((c) => c.value)).to.deep.equal([0.5]);
      expect(malformed.map((e) => e.message).join('\n')).to.match(/carried "a string"/).and.match(/unkeyed variable "Ratio" must carry no key .*received "k"/);
      expect(watcher.stats().invalidEvents).to.equal(2);
    });

    it('gives a watcher of an integer or number variable a number when a foreign encoder wrote it as uint 64 / int 64', async () => {
      const watcher = await client('web');
      const stamp = defineVar({ name: 'Stamp', type: 'integer', owner: 'py', description: 'a time in ms' });
      const level = defineVar({ name: 'Level', type: 'number', owner: 'py', description: 'a level' });
      const seen: Array<[string, unknown]> = [];
      const malformed: MalformedMessageError[] = [];
      watcher.on('malformed', (e: MalformedMessageError) => malformed.push(e));
      await watcher.watch(stamp, (change) => void seen.push(['Stamp', change.value]));
      await watcher.watch(level, (change) => void seen.push(['Level', change.value]));
      const uint64 = Buffer.alloc(9, 0xcf);
      uint64.writeBigUInt64BE(1_700_000_000_000n, 1);
      const int64 = Buffer.alloc(9, 0xd3);
      int64.writeBigInt64BE(-3n, 1);
      const beyondSafe = Buffer.alloc(9, 0xcf);
      beyondSafe.writeBigUInt64BE(BigInt(Number.MAX_SAFE_INTEGER) + 2n, 1);
      await route.injectRaw(watcher.names.variableChanged('py', 'Stamp'), foreignChangeFrame('intracom.var.py.Stamp', uint64));
      await route.injectRaw(watcher.names.variableChanged('py', 'Level'), foreignChangeFrame('intracom.var.py.Level', int64));
      await route.injectRaw(watcher.names.variableChanged('py', 'Stamp'), foreignChangeFrame('intracom.var.py.Stamp', beyondSafe));
      await until(() => seen.length === 2 && malformed.length === 1, 5000, 'two changes and one refusal');
      expect(seen).to.deep.equal([
        ['Stamp', 1_700_000_000_000],
        ['Level', -3],
      ]);
      expect(seen.every(([, value]) => typeof value === 'number')).to.equal(true);
      expect(malformed[0].message).to.match(/variable "Stamp" \(integer\) carried 9007199254740993n/);
    });

    it('refuses names that would make a channel ambiguous with a ValidationError naming the option and the value', async () => {
      for (const instanceId of ['a.b', 'rpc', 'events', 'messages', 'workers', '']) {
        expect(() => new RedisClient(route.options('s', { instanceId })), instanceId)
          .to.throw(ValidationError)
          .with.property('message')
          .that.contains('instanceId')
          .and.contains(JSON.stringify(instanceId));
      }
      for (const service of ['a..b', '.a', 'a.', 'a b', 'a:b', 'a{b}']) {
        expect(() => new RedisClient(route.options(service)), service).to.throw(ValidationError, new RegExp(`service must be .*${JSON.stringify(service).replace(/[.{}]/g, '\\$&')}`));
      }
      const ok = await client('TeraServer.UserManagerModule', { instanceId: 'node-1' });
      expect(ok.service).to.equal('TeraServer.UserManagerModule');
      expect(await rejection(ok.instances('a..b'))).to.be.instanceOf(ValidationError);
    });

    it('sends no value in the change event of a secret variable, to watchers or to anyone on the channel', async () => {
      expect(RedisVars.UserTokenAPIKey.secret).to.equal(true);
      const [auth, watcher] = [await client('auth'), await client('web')];
      const spy = await client('spy');
      const raw: unknown[] = [];
      // what any subscriber of the channel (redis-cli, another language) receives
      await spy.route.subscribe(auth.names.variableChanged('auth', 'UserTokenAPIKey'), (message) => void raw.push(...payloadsOf(message)));
      const changes: Array<VariableChange<string>> = [];
      await watcher.watch(RedisVars.UserTokenAPIKey, (change) => void changes.push(change));
      await auth.set(RedisVars.UserTokenAPIKey, 'hunter2-signing-key');
      await auth.delete(RedisVars.UserTokenAPIKey);
      await until(() => changes.length === 2 && raw.length === 2, 5000, 'two changes');
      expect(changes).to.deep.equal([
        { key: undefined, value: null, secret: true, deleted: false, changedBy: 'auth', sender: { service: 'auth', verified: false } },
        { key: undefined, value: null, secret: true, deleted: true, changedBy: 'auth', sender: { service: 'auth', verified: false } },
      ]);
      expect(raw).to.deep.equal([
        { key: null, deleted: false, secret: true },
        { key: null, deleted: true, secret: true },
      ]);
      expect(JSON.stringify(raw)).not.to.contain('hunter2');
      await auth.set(RedisVars.UserTokenAPIKey, 'hunter2-signing-key');
      expect(await watcher.get(RedisVars.UserTokenAPIKey)).to.equal('hunter2-signing-key');
      // a foreign client that sends the value anyway: the watcher still gets none
      const headers = { name: 'intracom.var.auth.UserTokenAPIKey', createdAt: new Date().toISOString(), serviceName: 'old' };
      await route.injectRaw(auth.names.variableChanged('auth', 'UserTokenAPIKey'), encodeFrame(codec, [{ headers, payload: { key: null, value: 'leaked', deleted: false } }]));
      await until(() => changes.length === 4, 5000, 'the foreign change');
      expect(changes.map((c) => c.value)).to.deep.equal([null, null, null, null]);
    });

    it('never echoes a secret value in an error message', async () => {
      const auth = await client('auth');
      const error = await rejection(auth.set(RedisVars.UserTokenAPIKey, 12345 as unknown as string));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/UserTokenAPIKey.*a string; received a number \(value of a secret variable not shown\)/);
      expect(error.message).not.to.contain('12345');
    });
  });
}

describe('intracom watch and secret variables', () => {
  it('prints [redacted] instead of the value of a secret variable sent by a client that did not know it was secret', () => {
    const at = new Date().toISOString();
    const headers = { name: 'intracom.var.auth.UserTokenAPIKey', createdAt: at, serviceName: 'old' };
    const [secret] = classify({ headers, payload: { key: null, value: 'hunter2', deleted: false } }, 'intracom.var.auth.UserTokenAPIKey', at);
    expect(JSON.stringify(secret)).not.to.contain('hunter2');
    expect(secret.fields.payload).to.deep.equal({ key: null, value: '[redacted]', deleted: false });
    const [batched] = classify({ headers, payloads: [{ key: null, value: 'hunter2', deleted: false }] }, 'intracom.var.auth.UserTokenAPIKey', at);
    expect(JSON.stringify(batched)).not.to.contain('hunter2');
    const [plain] = classify({ headers, payload: { key: null, value: 'visible', deleted: false } }, 'intracom.var.cms.Banner', at);
    expect(plain.fields.payload).to.deep.equal({ key: null, value: 'visible', deleted: false });
  });
});
