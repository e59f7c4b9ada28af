/**
 * The batcher's own bookkeeping keeps no message alive past its flush: the
 * messages of a busy channel die young, however many flushes there were
 * (the map of the batches waiting is a new one each flush; a Map cleared
 * and used again kept, through its replaced tables, every batch it held).
 */
import { expect } from 'chai';
import pino from 'pino';
import { MsgpackCodec } from '../../src/envelope/codec';
import { FrameBatcher } from '../../src/route/FrameBatcher';
import { promotedBytesPerItem } from '../support/promotion';

describe('FrameBatcher memory', () => {
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
