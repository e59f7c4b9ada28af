/**
 * RedisClient.publishAndForget: the events of publish without a promise per
 * event. Attacked here: it delivers what publish delivers, in order and in
 * the same frames; an event it cannot send is reported (stats, `error`,
 * log) without touching the others of its tick, and with nobody listening
 * to `error` nothing throws; bad input is refused at once and queues nothing.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { NotConnectedError, PayloadTooLargeError, ValidationError } from '../../src/errors/index';
import { onEachRoute } from '../support/routes';
import { until } from '../support/async';

onEachRoute('RedisClient.publishAndForget', (options) => {
  let sender: RedisClient;
  let receiver: RedisClient;
  const topic = 'service.forget.events';

  beforeEach(async () => {
    sender = new RedisClient({ ...options('forget-sender'), limits: { maxPayloadBytes: 1000 } });
    receiver = new RedisClient(options('forget-receiver'));
    await Promise.all([sender.connect(), receiver.connect()]);
  });

  afterEach(async () => {
    await Promise.all([sender.close(), receiver.close()]);
  });

  it('delivers a burst mixed with publish in order, as one frame per tick, with nothing unsent', async () => {
    const received: unknown[] = [];
    await receiver.subscribe(topic, (payload) => void received.push(payload));
    const framesBefore = sender.stats().framesSent;
    const counted: Array<Promise<number>> = [];
    for (let i = 0; i < 100; i++) {
      if (i % 10 === 0) counted.push(sender.publish(topic, { i }));
      else sender.publishAndForget(topic, { i });
    }
    expect(await Promise.all(counted)).to.deep.equal(Array(10).fill(1));
    await until(() => received.length === 100, 5000, 'a hundred events');
    expect(received).to.deep.equal(Array.from({ length: 100 }, (_, i) => ({ i })));
    expect(sender.stats().framesSent - framesBefore).to.equal(1);
    expect(sender.stats().unsentEvents).to.equal(0);
  });

  it('reports an oversized event alone (stats, error event) and sends the others of its tick', async () => {
    const received: unknown[] = [];
    const errors: unknown[] = [];
    sender.on('error', (error) => errors.push(error));
    await receiver.subscribe(topic, (payload) => void received.push(payload));
    sender.publishAndForget(topic, 'a');
    sender.publishAndForget(topic, 'x'.repeat(5000));
    sender.publishAndForget(topic, 'b');
    sender.publishAndForget(topic, 'y'.repeat(3000));
    sender.publishAndForget(topic, 'c');
    await until(() => received.length === 3 && errors.length === 2, 5000, 'three events and two errors');
    expect(received).to.deep.equal(['a', 'b', 'c']);
    expect(sender.stats().unsentEvents).to.equal(2);
    expect(errors.every((error) => error instanceof PayloadTooLargeError)).to.equal(true);
  });

  it('with no error listener, an unsent event is counted and nothing throws', async () => {
    const received: unknown[] = [];
    await receiver.subscribe(topic, (payload) => void received.push(payload));
    sender.publishAndForget(topic, 'x'.repeat(5000));
    sender.publishAndForget(topic, 'after');
    await until(() => received.length === 1 && sender.stats().unsentEvents === 1, 5000, 'the event after the oversized one');
    expect(received).to.deep.equal(['after']);
  });

  it('throws ValidationError for a bad topic or a payload publish refuses, and NotConnectedError once closed, queueing nothing', async () => {
    const before = sender.stats().messagesSent;
    expect(() => sender.publishAndForget('', 1)).to.throw(ValidationError, /topic must be a non-empty string; received ""/);
    expect(() => sender.publishAndForget(42 as unknown as string, 1)).to.throw(ValidationError, /received 42/);
    expect(() => sender.publishAndForget(topic, { user: { notify: Symbol('x') } })).to.throw(ValidationError, /payload\.user\.notify is a symbol/);
    const refused: unknown = await sender.publish(topic, { user: { notify: Symbol('x') } }).then(() => undefined, (error: unknown) => error);
    expect(refused).to.be.instanceOf(ValidationError);
    await sender.close();
    expect(() => sender.publishAndForget(topic, 1)).to.throw(NotConnectedError);
    expect(sender.stats().messagesSent).to.equal(before);
    expect(sender.stats().unsentEvents).to.equal(0);
  });
});
