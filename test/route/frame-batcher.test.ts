/**
 * What the frame batcher keeps alive: while a frame's write is pending
 * (Redis has not answered yet), who to tell, not the messages, which are
 * encoded already, and every message is still told how its write ended,
 * with its own context; after its flush, nothing of a batch (the map of the
 * batches waiting is a new one each flush: a Map cleared and used again
 * kept, through its replaced tables, every batch it held).
 */
import { expect } from 'chai';
import pino from 'pino';
import { MsgpackCodec } from '../../src/envelope/codec';
import { FrameBatcher } from '../../src/route/FrameBatcher';
import { collectAfterThisJob, promotedBytesPerItem } from '../support/promotion';

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
    await collectAfterThisJob();
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

describe('FrameBatcher after a flush', () => {
  it('lets the messages of flushed batches die young (a cleared Map kept nearly every one: about 200 bytes each)', async function () {
    this.timeout(20_000);
    const written = Promise.resolve(1);
    const batcher = new FrameBatcher<number>(new MsgpackCodec(), { maxPayloadBytes: 1 << 20, maxFrameBytes: 1 << 20 }, () => written, { framesSent: 0, messagesSent: 0 }, pino({ level: 'silent' }));
    let next = 0;
    let told = 0;
    const done = (): void => {
      told += 1;
    };
    // 64 messages a flush, as 64 calls or events in one tick
    const ticks = (count: number) => {
      for (let i = 0; i < count; i++) {
        batcher.post('channel', { i: next++, name: 'x'.repeat(40), at: 1_700_000_000_000 }, undefined, undefined, done);
        if (next % 64 === 0) batcher.flush();
      }
      batcher.flush();
    };
    const promoted = await promotedBytesPerItem(() => ticks(64), ticks);
    expect(told).to.equal(next);
    // measured: under 10 bytes per message; with one Map cleared and used again, about 200
    expect(promoted, `${promoted.toFixed(0)} bytes per message reached the old generation`).to.be.below(60);
  });
});
