/**
 * Issue 14 review (r14): a user's slip at the public surface gets a typed
 * error at the call that made it, and never a stuck handler slot, a raw
 * TypeError, or a silently ignored field.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { MemoryDeployment } from '../../src/testing/MemoryDeployment';
import { ValidationError } from '../../src/errors/ValidationError';
import { NoHandlerError } from '../../src/errors/NoHandlerError';
import { RemoteError } from '../../src/errors/RemoteError';
import { defineFunctions, schema } from '../../vars/functions';
import { defineTopic, defineVar } from '../../vars/define';

describe('surface misuse (r14)', function () {
  this.timeout(20_000);
  let deployment: MemoryDeployment;
  let server: RedisRPCClient;
  let caller: RedisRPCClient;

  beforeEach(async () => {
    deployment = new MemoryDeployment();
    server = new RedisRPCClient({ service: 'y', ...deployment.options, concurrency: 2, maxQueued: 1 });
    caller = new RedisRPCClient({ service: 'z', ...deployment.options, timeoutMs: 10_000 });
    await server.connect();
    await caller.connect();
  });
  afterEach(async () => {
    await Promise.all([server.close(), caller.close()]);
  });

  describe('B1: expose() with something that is not a definition', () => {
    for (const [label, definition] of [
      ['a number', 5],
      ['args that are not schemas', { args: [{}], result: schema.number() }],
      ['a result that is not a schema', { args: [], result: {} }],
      ['a misspelt field', { args: [], result: schema.number(), idempotant: true }],
      ['a non-boolean idempotent', { args: [], result: schema.number(), idempotent: 'yes' }],
    ] as const) {
      it(`refuses ${label} with a ValidationError from expose() and serves nothing under that name`, async () => {
        await server.expose('ok', () => 1);
        const error = await server.expose('g', () => 1, { definition: definition as never }).then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(error).to.be.instanceOf(ValidationError);
        expect((error as Error).message).to.contain('"g"');
        const call = await caller.callService('y', 'g').then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(call).to.be.instanceOf(NoHandlerError);
      });
    }

    it('a declaration that throws while checking answers the caller at once and releases the slot', async () => {
      let reads = 0;
      const definition = {
        get args() {
          reads += 1;
          if (reads > 1) throw new TypeError('broken declaration');
          return [schema.number()];
        },
        result: schema.number(),
      };
      await server.expose('g', ([a]: [number]) => a, { definition: definition as never });
      await server.expose('ok', () => 'fine');
      // more calls than concurrency + maxQueued: a leaked slot would make the later ones ServiceBusyError
      for (let i = 0; i < 4; i++) {
        const error = await caller.callService('y', 'g', 1).then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(error).to.be.instanceOf(RemoteError);
        expect((error as Error).message).to.contain('declaration of g');
      }
      expect(await caller.callService('y', 'ok')).to.equal('fine');
      expect(server.stats().serving).to.equal(0);
      const started = Date.now();
      await server.close();
      // close() does not wait for a leaked slot (closeTimeoutMs is 5 s by default)
      expect(Date.now() - started).to.be.below(2000);
    });
  });

  describe('B6: implement() refuses what it cannot serve as asked', () => {
    const Calc = defineFunctions({ service: 'y' }, { add: { args: [schema.number(), schema.number()], result: schema.number() } });
    const refusal = async (declaration: unknown, handlers: unknown): Promise<Error> => {
      const error = await server.implement(declaration as never, handlers as never).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).to.be.instanceOf(ValidationError);
      return error as Error;
    };

    it('a handler that is not a function is named as such, not as missing', async () => {
      expect((await refusal(Calc, { add: 5 })).message).to.contain('the handler of "add" must be a function; received 5');
    });

    it('a handler under a name the declaration lacks, with the nearest declared name', async () => {
      expect((await refusal(Calc, { add: ([a, b]: number[]) => a + b, ad: () => 0 })).message).to.match(/"ad"; did you mean "add"\?/);
    });

    it("another service's declaration", async () => {
      const Billing = defineFunctions({ service: 'billing' }, { charge: { args: [], result: schema.number() } });
      expect((await refusal(Billing, { charge: () => 1 })).message).to.contain('this client is service "y"');
      // nothing was served: the caller finds no billing instance
      const error = await caller.callService('billing', 'charge').then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).to.be.instanceOf(Error).and.not.instanceOf(RemoteError);
    });

    it('a module declaration is served from any service', async () => {
      const Tools = defineFunctions({ module: 'tools' }, { ping: { args: [], result: schema.string() } });
      await server.implement(Tools, { ping: () => 'pong' });
      expect(await caller.call(Tools, 'ping')).to.equal('pong');
    });
  });

  describe('B5: defineFunctions refuses a misspelt field', () => {
    it('names the field and the nearest known name', () => {
      expect(() => defineFunctions({ service: 'y' }, { f: { args: [], result: schema.number(), idempotant: true } as never })).to.throw(ValidationError, /idempotant.*did you mean "idempotent"/);
    });
  });
});

/** The client as a caller without types sees it (a JavaScript caller, or a lookup typed any). */
const loose = (client: RedisClient) => client as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;

describe('surface misuse (r14): variables', () => {
  let deployment: MemoryDeployment;
  let client: RedisClient;
  before(async () => {
    deployment = new MemoryDeployment();
    client = new RedisClient({ service: 'x', ...deployment.options });
    await client.connect();
  });
  after(async () => {
    await client.close();
  });

  for (const missing of [null, undefined]) {
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['get', () => loose(client).get(missing)],
      ['set', () => loose(client).set(missing, 1)],
      ['watch', () => loose(client).watch(missing, () => undefined)],
      ['delete', () => loose(client).delete(missing)],
      ['increment', () => loose(client).increment(missing)],
    ];
    for (const [name, call] of cases) {
      it(`B4: ${name}(${String(missing)}) rejects with a ValidationError naming the call`, async () => {
        const error = await call().then(
          () => undefined,
          (thrown: unknown) => thrown,
        );
        expect(error).to.be.instanceOf(ValidationError);
        expect((error as Error).message).to.contain(`${name} needs a variable declared with defineVar`);
      });
    }
  }
});

describe('surface misuse (r14): declarations', () => {
  const base = { name: 'P', type: 'string', owner: 'vault', description: 'a password' } as const;

  for (const [field, nearest] of [
    ['secert', 'secret'],
    ['ttlMS', 'ttlMs'],
    ['keyDescripton', 'keyDescription'],
  ] as const) {
    it(`B5: defineVar refuses the misspelt field "${field}" and names "${nearest}"`, () => {
      expect(() => defineVar({ ...base, [field]: true } as never)).to.throw(ValidationError, new RegExp(`"${field}"; did you mean "${nearest}"`));
    });
  }

  it('B5: a misspelt secret never lets the value out: the declaration is refused before any set', () => {
    expect(() => defineVar({ ...base, secert: true } as never)).to.throw(ValidationError);
    expect(defineVar({ ...base, secret: true }).secret).to.equal(true);
  });

  it('B5: defineVar refuses a non-object and a non-boolean keyed; defineTopic refuses unknown fields', () => {
    expect(() => defineVar(null as never)).to.throw(ValidationError, /defineVar needs an object/);
    expect(() => defineVar({ ...base, keyed: 'yes' } as never)).to.throw(ValidationError, /keyed of variable "P" must be a boolean/);
    expect(() => defineTopic({ name: 't', payload: 'x', publishers: [], subscribers: [], descripton: 'd' } as never)).to.throw(ValidationError, /did you mean "description"/);
  });
});

describe('surface misuse (r14): options through a prototype', () => {
  it('B6: an unknown option inherited from a prototype is refused like an own one', () => {
    const options = Object.assign(Object.create({ conectTimeoutMs: 5 }) as object, { service: 'x', route: 'memory' });
    expect(() => new RedisClient(options as never)).to.throw(ValidationError, /"conectTimeoutMs"; did you mean "connectTimeoutMs"/);
  });
});
