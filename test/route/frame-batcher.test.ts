/**
 * What the frame batcher holds while a frame's write is pending (Redis has
 * not answered yet): who to tell, not the messages, which are encoded
 * already; and every message is still told how its write ended, with its
 * own context.
 */
import { expect } from 'chai';
import pino from 'pino';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MsgpackCodec } from '../../src/envelope/codec';
import { FrameBatcher } from '../../src/route/FrameBatcher';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** A batcher whose writes stay pending until `finish` is called (with an error: they fail). */
function pendingWrites() {
  const frames: Buffer[] = [];
  const settlers: Array<{ resolve: (n: number) => void; reject: (error: unknown) => void }> = [];
  const batcher = new FrameBatcher<number>(
    new MsgpackCodec(),
    { maxPayloadBytes: 1_000_000, maxFrameBytes: 262_144 },
    (_channel, frame) => {
      frames.push(frame);
      return new Promise<number>((resolve, reject) => settlers.push({ resolve, reject }));
    },
    { framesSent: 0, messagesSent: 0 },
    pino({ level: 'silent' }),
  );
  const finish = (error?: Error) => {
    for (const settler of settlers) (error === undefined ? settler.resolve(3) : settler.reject(error));
  };
  return { batcher, frames, finish };
}

/** Ends the current job (WeakRef targets stay alive until then), then collects. */
async function collect(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
}

describe('FrameBatcher while a write is pending', () => {
  it('lets go of the messages of a frame once it is encoded, shared context or not', async () => {
    const { batcher, frames, finish } = pendingWrites();
    const told: unknown[] = [];
    const done = (context: unknown, error: unknown, written: number | undefined) => told.push([context, error, written]);
    const refs: Array<WeakRef<object>> = [];
    const headers = { name: 'events' };
    (() => {
      for (let i = 0; i < 50; i++) {
        const event = { i, text: 'x'.repeat(100) };
        refs.push(new WeakRef(event));
        batcher.post('events', event, headers, 'topic', done);
      }
      for (let i = 0; i < 50; i++) {
        const request = { i, args: ['y'.repeat(100)] };
        refs.push(new WeakRef(request));
        batcher.post('requests', request, undefined, `call ${i}`, done);
      }
    })();
    await collect();
    expect(frames).to.have.length(2);
    expect(told).to.deep.equal([]);
    expect(refs.filter((ref) => ref.deref() !== undefined)).to.have.length(0);
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).to.deep.equal([...Array.from({ length: 50 }, () => ['topic', undefined, 3]), ...Array.from({ length: 50 }, (_, i) => [`call ${i}`, undefined, 3])]);
  });

  it('tells each message of a failed write, once, with its own context and the error', async () => {
    const { batcher, finish } = pendingWrites();
    const told: Array<[unknown, unknown]> = [];
    const done = (context: unknown, error: unknown) => void told.push([context, error]);
    const other = (context: unknown, error: unknown) => void told.push([`other ${String(context)}`, error]);
    const headers = { name: 'events' };
    for (let i = 0; i < 3; i++) batcher.post('events', { i }, headers, 'topic', done);
    batcher.post('events', { i: 3 }, headers, 'topic', other);
    batcher.post('events', { i: 4 }, headers, 'elsewhere', done);
    await new Promise((resolve) => setImmediate(resolve));
    const failure = new Error('connection lost');
    finish(failure);
    await new Promise((resolve) => setImmediate(resolve));
    expect(told).to.deep.equal([
      ['topic', failure],
      ['topic', failure],
      ['topic', failure],
      ['other topic', failure],
      ['elsewhere', failure],
    ]);
  });
});
