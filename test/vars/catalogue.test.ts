import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RedisClient } from '../../src/client/RedisClient';
import { defineCatalogue, defineTopic, defineVar, mergeCatalogues } from '../../vars/define';
import { Names, moduleEvents, moduleMessages, moduleRpc, serviceEvents, serviceMessages, serviceRpc, websocketEvents } from '../../vars/names';
import { builtinCatalogue, RedisVars } from '../../vars/RedisVars';
import { renderCatalogueMarkdown } from '../../vars/render';
import { ValidationError } from '../../vars/ValidationError';

describe('catalogue', () => {
  it('docs/catalogue.md is the rendering of the built-in catalogue (run `npm run catalogue` when this fails)', () => {
    const onDisk = readFileSync(join(__dirname, '..', '..', 'docs', 'catalogue.md'), 'utf8');
    expect(onDisk).to.equal(renderCatalogueMarkdown(builtinCatalogue));
  });

  it('builds every topic of the convention', () => {
    expect(moduleEvents('TeraServer.UserManagerModule')).to.equal('module.TeraServer.UserManagerModule.events');
    expect(moduleMessages('x')).to.equal('module.x.messages');
    expect(moduleRpc('x')).to.equal('module.x.rpc');
    expect(serviceEvents('files')).to.equal('service.files.events');
    expect(serviceMessages('files')).to.equal('service.files.messages');
    expect(serviceRpc('files')).to.equal('service.files.rpc');
    expect(websocketEvents('user', 'a1b2')).to.equal('websocket.user.a1b2.events');
    expect(websocketEvents('participant', 'p')).to.equal('websocket.participant.p.events');
    expect(websocketEvents('device', 'd')).to.equal('websocket.device.d.events');
  });

  it('refuses names that would act as globs or break the grammar', () => {
    expect(() => moduleEvents('a*')).to.throw(ValidationError, /module name must be .*received "a\*"/);
    expect(() => serviceRpc('')).to.throw(ValidationError, /service name/);
    expect(() => websocketEvents('admin' as 'user', 'x')).to.throw(ValidationError, /websocket kind must be/);
    expect(() => new Names('a:b')).to.throw(ValidationError, /namespace must be .*received "a:b"/);
  });

  it('prefixes keys and channels with the namespace and keeps a service in one hash slot', () => {
    const names = new Names('prod');
    expect(names.channel('module.x.events')).to.equal('prod:module.x.events');
    expect(names.topicOf('prod:module.x.events')).to.equal('module.x.events');
    expect(names.variable('auth', 'UserLoginAttempts', 'u1')).to.equal('prod:ic:{auth}:var:UserLoginAttempts:u1');
    expect(names.instanceSet('users')).to.equal('prod:ic:{users}:instances');
    expect(names.instanceAnnouncements('users')).to.equal('prod:ic:{users}:announcements');
    expect(names.mutex('schema')).to.equal('prod:ic:{mutex:schema}:lock');
    expect(names.mutexFence('schema')).to.equal('prod:ic:{mutex:schema}:fence');
    const bare = new Names();
    expect(bare.channel('module.x.events')).to.equal('module.x.events');
    expect(bare.variable('auth', 'UserTokenAPIKey')).to.equal('ic:{auth}:var:UserTokenAPIKey');
  });

  it('declares variables with checked fields', () => {
    expect(() => defineVar({ name: 'bad name', type: 'string', owner: 'x', description: 'd' })).to.throw(ValidationError, /variable name/);
    expect(() => defineVar({ name: 'A', type: 'date' as 'string', owner: 'x', description: 'd' })).to.throw(ValidationError, /type of variable "A" must be one of/);
    expect(() => defineVar({ name: 'A', type: 'string', owner: 'x', description: 'd', ttlMs: 0 })).to.throw(ValidationError, /ttlMs of variable "A" must be a positive integer; received 0/);
    expect(() => defineVar({ name: 'A', type: 'string', owner: 'x', description: '' })).to.throw(ValidationError, /description/);
    expect(() => defineTopic({ name: '', payload: 'x', publishers: [], subscribers: [] })).to.throw(ValidationError, /topic name/);
  });

  it('speaks one error vocabulary: the catalogue and the client refuse bad names with ValidationError, describing the value the same way', async () => {
    const client = new RedisClient({ service: 'vocabulary', route: 'memory' });
    const refused = await client.instances('bad name').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).to.be.instanceOf(ValidationError);
    expect((refused as ValidationError).code).to.equal('ERR_VALIDATION');
    expect((refused as Error).message).to.match(/service must be .*; received "bad name"$/);
    expect(() => new RedisClient({ service: 'x', route: 'memory', registry: { heartbeatMs: [1, 2] as unknown as number } })).to.throw(ValidationError, /received an array of 2$/);
    expect(() => defineVar({ name: 'A', type: 'string', owner: 'x', description: 'd', ttlMs: Buffer.alloc(3) as unknown as number })).to.throw(ValidationError, /received a Buffer of 3 bytes$/);
    await client.close();
  });

  it('refuses a variable declared twice when catalogues are merged', () => {
    const mine = defineCatalogue('mine', {
      vars: { UserTokenAPIKey: defineVar({ name: 'Other', type: 'string', owner: 'x', description: 'clash' }) },
      topics: {},
    });
    expect(() => mergeCatalogues('all', builtinCatalogue, mine)).to.throw(ValidationError, /redeclares variable "UserTokenAPIKey"/);
    const twice = { A: defineVar({ name: 'Same', type: 'string', owner: 'x', description: 'a' }), B: defineVar({ name: 'Same', type: 'string', owner: 'x', description: 'b' }) };
    expect(() => defineCatalogue('dup', { vars: twice, topics: {} })).to.throw(ValidationError, /declares variable "Same" twice/);
  });

  it('types get/set from the declaration (checked by `npm run typecheck`)', async () => {
    const client = new RedisClient({ service: 'typing' });
    const compileOnly = async (): Promise<void> => {
      const attempts: number | null = await client.get(RedisVars.UserLoginAttempts, 'u1');
      const secret: string | null = await client.get(RedisVars.UserTokenAPIKey);
      await client.set(RedisVars.UserTokenAPIKey, 'secret');
      await client.set(RedisVars.UserLoginAttempts, 'u1', 3, { ttlMs: 1000 });
      // @ts-expect-error a keyed variable needs its key
      await client.get(RedisVars.UserLoginAttempts);
      // @ts-expect-error an unkeyed variable takes no key
      await client.get(RedisVars.UserTokenAPIKey, 'u1');
      // @ts-expect-error wrong value type
      await client.set(RedisVars.UserTokenAPIKey, 42);
      // @ts-expect-error wrong value type for a keyed variable
      await client.set(RedisVars.UserLoginAttempts, 'u1', 'three');
      // @ts-expect-error increment needs an integer variable
      await client.increment(RedisVars.UserTokenAPIKey);
      void attempts;
      void secret;
    };
    expect(compileOnly).to.be.a('function');
  });
});
