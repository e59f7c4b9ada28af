/**
 * The built-in schema constructors check what they are given when the
 * schema is defined: a composite given something that is not a built-in
 * schema used to be accepted, and every call it then checked threw inside
 * the serving instance and was never answered. And should a hand-made
 * schema's check throw anyway, the call is answered with a ValidationError.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { ValidationError } from '../../src/errors/index';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { MemoryDeployment } from '../../src/testing/index';
import { defineFunctions, schema, type Schema } from '../../vars/functions';
import { rejection, thrown } from '../support/async';

describe('built-in schema constructors', () => {
  const notSchemas: unknown[] = ['number', 42, null, undefined, {}, () => true, { type: 'number' }, { check: () => undefined }];

  for (const [name, construct] of [
    ['array', (x: unknown) => schema.array(x as Schema<unknown>)],
    ['optional', (x: unknown) => schema.optional(x as Schema<unknown>)],
    ['nullable', (x: unknown) => schema.nullable(x as Schema<unknown>)],
    ['object', (x: unknown) => schema.object({ id: x as Schema<unknown> })],
  ] as const) {
    it(`schema.${name} refuses a non-schema with a ValidationError when defined`, () => {
      for (const value of notSchemas) {
        const error = thrown(() => construct(value));
        expect(error, String(value)).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(new RegExp(`^schema\\.${name} needs, as .*, a schema made by \`schema\`; received `));
      }
    });
  }

  it('schema.array of a Standard Schema says to declare the whole value with that library', () => {
    expect(thrown(() => schema.array(z.string() as never)).message).to.match(/a zod schema: declare the whole value with zod instead/);
  });

  it('schema.object refuses properties that are not an object; schema.literal a value that is not a literal', () => {
    for (const value of [null, 'x', [schema.string()]]) expect(thrown(() => schema.object(value as never))).to.be.instanceOf(ValidationError);
    for (const value of [{}, NaN, Infinity, undefined, 1n]) expect(thrown(() => schema.literal(value as never))).to.be.instanceOf(ValidationError);
  });

  it('composites of built-in schemas still check as before', () => {
    const shape = schema.object({ ids: schema.array(schema.integer()), note: schema.optional(schema.nullable(schema.string())), kind: schema.literal('a') });
    expect(shape.check({ ids: [1, 2], kind: 'a' }, 'x')).to.equal(undefined);
    expect(shape.check({ ids: [1, 'two'], kind: 'a' }, 'x')).to.match(/x\.ids\[1\] must be integer/);
  });

  it('a call checked by a hand-made schema whose check throws is answered with a ValidationError, not left unanswered', async () => {
    const broken: Schema<unknown> = {
      type: 'broken',
      check: () => {
        throw new TypeError('check exploded');
      },
      '~standard': { version: 1, vendor: 'intracom', validate: () => ({ value: undefined }) },
    };
    const Api = defineFunctions({ service: 'brokenschema' }, { f: { args: [broken], result: schema.any() } });
    const deployment = new MemoryDeployment();
    const server = new RedisRPCClient({ service: 'brokenschema', ...deployment.options });
    const caller = new RedisRPCClient({ service: 'caller', ...deployment.options, timeoutMs: 2000 });
    await Promise.all([server.connect(), caller.connect()]);
    try {
      await server.implement(Api, { f: () => 1 });
      const error = await rejection(caller.callService(Api, 'f', 1));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/could not be checked: check exploded/);
    } finally {
      await Promise.all([server.close(), caller.close()]);
    }
  });
});
