/**
 * Issue 14 review (r14): a user's slip at the public surface gets a typed
 * error at the call that made it, and never a stuck handler slot, a raw
 * TypeError, or a silently ignored field.
 */
import { expect } from 'chai';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { MemoryDeployment } from '../../src/testing/MemoryDeployment';
import { ValidationError } from '../../src/errors/ValidationError';
import { NoHandlerError } from '../../src/errors/NoHandlerError';
import { RemoteError } from '../../src/errors/RemoteError';
import { defineFunctions, schema } from '../../vars/functions';

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

  describe('B5: defineFunctions refuses a misspelt field', () => {
    it('names the field and the nearest known name', () => {
      expect(() => defineFunctions({ service: 'y' }, { f: { args: [], result: schema.number(), idempotant: true } as never })).to.throw(ValidationError, /idempotant.*did you mean "idempotent"/);
    });
  });
});
