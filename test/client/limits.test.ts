/**
 * Every message sent settles, whatever the size limits: a frame too big for a
 * receiver is split, never refused as a whole with only its first entry told;
 * and limits that contradict each other are refused at construction.
 */
import { expect } from 'chai';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { MsgpackCodec } from '../../src/envelope/codec';
import { PayloadTooLargeError, ValidationError } from '../../src/errors/index';
import type Redis from 'ioredis';
import { FrameBatcher } from '../../src/route/FrameBatcher';
import type { RedisRoute } from '../../src/route/RedisRoute';
import { onEachRoute, type RouteOptionsOf } from '../support/routes';
import { until } from '../support/async';

/** Resolves with how each promise settled, or rejects naming the ones still pending after `ms`. */
async function settledWithin<T>(promises: Array<Promise<T>>, ms: number): Promise<Array<PromiseSettledResult<T>>> {
  let timer: NodeJS.Timeout | undefined;
  const states: Array<'pending' | 'settled'> = promises.map(() => 'pending');
  promises.forEach((p, i) => p.then(() => (states[i] = 'settled'), () => (states[i] = 'settled')));
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${states.filter((s) => s === 'pending').length} of ${promises.length} promises never settled`)), ms);
  });
  try {
    return await Promise.race([Promise.allSettled(promises), expired]);
  } finally {
    clearTimeout(timer);
  }
}

describe('FrameBatcher limits', () => {
  it('splits a frame over maxPayloadBytes even when maxFrameBytes allows it: every entry is written and told', async () => {
    const frames: Buffer[] = [];
    const batcher = new FrameBatcher<number>(new MsgpackCodec(), { maxPayloadBytes: 1000, maxFrameBytes: 262_144 }, async (_c, frame) => (frames.push(frame), 1), { framesSent: 0, messagesSent: 0 }, pino({ level: 'silent' }));
    const sent = Array.from({ length: 10 }, () => batcher.send('ch', 'x'.repeat(200)));
    const outcomes = await settledWithin(sent, 2000);
    expect(outcomes.map((o) => o.status)).to.deep.equal(Array(10).fill('fulfilled'));
    expect(frames.every((f) => f.length <= 1000)).to.equal(true);
  });

  it('splits a burst that will not fit before encoding it, once one frame of the channel showed its message size; order and limits kept', async () => {
    const codec = new MsgpackCodec();
    const encoded: number[] = [];
    const counting = { encode: (value: unknown) => { const bytes = codec.encode(value); encoded.push(bytes.length); return bytes; }, decode: (bytes: Buffer) => codec.decode(bytes) };
    const frames: Buffer[] = [];
    const limits = { maxPayloadBytes: 100_000, maxFrameBytes: 10_000 };
    const batcher = new FrameBatcher<number>(counting, limits, async (_c, frame) => (frames.push(frame), 1), { framesSent: 0, messagesSent: 0 }, pino({ level: 'silent' }));
    const burst = async (from: number) => settledWithin(Array.from({ length: 100 }, (_, i) => batcher.send('ch', { i: from + i, pad: 'x'.repeat(200) })), 2000);
    await burst(0); // about 21 KB: encoded whole once, found too large, then in pieces
    encoded.length = 0;
    const outcomes = await burst(100);
    expect(outcomes.every((o) => o.status === 'fulfilled')).to.equal(true);
    // every encode of the second burst was a frame that was sent: nothing encoded whole and thrown away
    expect(encoded.every((size) => size <= limits.maxFrameBytes)).to.equal(true);
    expect(encoded.length).to.be.at.least(3);
    const received = frames.flatMap((frame) => (codec.decode(frame) as unknown[]).slice(1) as Array<{ i: number }>).map((m) => m.i);
    expect(received).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
    expect(frames.every((f) => f.length <= limits.maxFrameBytes)).to.equal(true);
  });

  it('refuses each oversized message alone and writes the others of its tick', async () => {
    const batcher = new FrameBatcher<number>(new MsgpackCodec(), { maxPayloadBytes: 1000, maxFrameBytes: 1000 }, async () => 1, { framesSent: 0, messagesSent: 0 }, pino({ level: 'silent' }));
    const sent = ['small', 'x'.repeat(2000), 'small', 'y'.repeat(3000)].map((m) => batcher.send('ch', m));
    const outcomes = await settledWithin(sent, 2000);
    expect(outcomes.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect((outcomes[1] as PromiseRejectedResult).reason).to.be.instanceOf(PayloadTooLargeError);
  });
});

describe('RedisClient size limits', () => {
  it('refuses limits.maxFrameBytes over limits.maxPayloadBytes at construction with a ValidationError naming both', () => {
    expect(() => new RedisClient({ service: 's', limits: { maxPayloadBytes: 1000, maxFrameBytes: 2000 } }))
      .to.throw(ValidationError)
      .with.property('message')
      .that.matches(/limits.maxFrameBytes must not exceed limits.maxPayloadBytes \(1000\).*received 2000/);
    expect(new RedisClient({ service: 's', limits: { maxPayloadBytes: 1000 } }).limits).to.deep.equal({ maxPayloadBytes: 1000, maxFrameBytes: 1000 });
    expect(new RedisClient({ service: 's' }).limits).to.deep.equal({ maxPayloadBytes: 1048576, maxFrameBytes: 262144 });
  });

});

/** A sender limited to 1000-byte payloads, a receiver of its events, and ten 200-byte payloads (more than one frame holds). */
async function withSmallSender(options: RouteOptionsOf, service: string, body: (sender: RedisClient, received: unknown[], payloads: string[]) => Promise<void>): Promise<void> {
  const sender = new RedisClient({ ...options(service), limits: { maxPayloadBytes: 1000 } });
  const receiver = new RedisClient(options('listener'));
  try {
    await Promise.all([sender.connect(), receiver.connect()]);
    const received: unknown[] = [];
    await receiver.subscribe(`service.${service}.events`, (payload) => void received.push(payload));
    await body(sender, received, Array.from({ length: 10 }, (_, i) => `${i}`.padEnd(200, '.')));
    expect(receiver.stats().malformed).to.equal(0);
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
}

onEachRoute('RedisClient size limits', (options, route) => {
  if (route === 'redis') {
    it('writes the frames of a burst split by maxFrameBytes in one socket write (writev), all arriving in order', async () => {
      await withSmallSender(options, 'splitting', async (sender, received, payloads) => {
        // the socket's own write calls: one writev of every piece, where each piece was a write of its own
        const stream = ((sender.route as RedisRoute).publisher as Redis).stream;
        const writes: number[] = [];
        const original = { write: stream._write, writev: stream._writev };
        stream._write = function (this: typeof stream, ...args: Parameters<typeof stream._write>) {
          writes.push(1);
          return original.write.apply(this, args);
        };
        stream._writev = function (this: typeof stream, ...args: Parameters<NonNullable<typeof stream._writev>>) {
          writes.push(args[0].length);
          return original.writev?.apply(this, args);
        };
        try {
          await Promise.all(payloads.map((p) => sender.publish('service.splitting.events', p)));
          expect(sender.stats().framesSent).to.be.greaterThan(1);
          expect(writes).to.deep.equal([sender.stats().framesSent]);
          await until(() => received.length === 10, 5000, 'ten events');
          expect(received).to.deep.equal(payloads);
        } finally {
          stream._write = original.write;
          stream._writev = original.writev;
        }
      });
    });
  }

  it('with maxPayloadBytes 1000, ten 200-byte events sent in one tick all resolve and all arrive (the issue: 1 error, 9 never settled)', async () => {
    await withSmallSender(options, 'small', async (sender, received, payloads) => {
      const outcomes = await settledWithin(payloads.map((p) => sender.publish('service.small.events', p)), 5000);
      expect(outcomes.map((o) => o.status)).to.deep.equal(Array(10).fill('fulfilled'));
      await until(() => received.length === 10, 5000, 'ten events');
      expect(received).to.deep.equal(payloads);
    });
  });
});
