/**
 * Compile-time sides of a Standard Schema that transforms: a caller passes
 * the argument schemas' input types and receives the result schema's output
 * type; a handler receives the arguments' output types and returns the
 * result schema's input type. `npm run typecheck` is the test: each
 * `@ts-expect-error` must stay an error, each plain line must compile.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { defineFunctions, type FunctionArgs, type FunctionResult, type HandlerArgs, type HandlerResult, type Implementation, type RedisRPCClient } from '../../src/index';

const Text = defineFunctions(
  { service: 'text' },
  {
    // input string, output number
    len: { args: [z.string().transform((s) => s.length)], result: z.number().transform((n) => `${n} chars`) },
  },
);

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const sides: [
  Equal<FunctionArgs<typeof Text, 'len'>, [string]>,
  Equal<HandlerArgs<typeof Text, 'len'>, [number]>,
  Equal<FunctionResult<typeof Text, 'len'>, string>,
  Equal<HandlerResult<typeof Text, 'len'>, number>,
] = [true, true, true, true];

export async function callerSide(caller: RedisRPCClient): Promise<string> {
  // @ts-expect-error: the caller passes the input type (string), not the transformed number
  await caller.callService(Text, 'len', 5);
  // @ts-expect-error: the caller receives the result's output type (string), not its input (number)
  const wrong: number = await caller.callService(Text, 'len', 'hello');
  void wrong;
  return caller.callService(Text, 'len', 'hello');
}

export const handlerSide: Implementation<typeof Text> = {
  len: ([length]) => length * 2, // receives number, returns the result schema's input (number)
};
export const wrongHandler: Implementation<typeof Text> = {
  // @ts-expect-error: the handler receives the transformed number, not the string
  len: ([text]: [string]) => text.length,
};

describe('Standard Schema transforms: input types for what is passed, output types for what is received', () => {
  it('types caller arguments by input, caller results by output, handler arguments by output (checked by the compiler)', () => {
    expect(sides).to.deep.equal([true, true, true, true]);
  });
});
