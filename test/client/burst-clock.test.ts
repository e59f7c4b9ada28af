/**
 * Events are dated (`headers.createdAt`) by a clock read at most once per 32
 * events within one turn of the event loop, and again in every new turn.
 * Attacked here: a burst reads the clock a bounded number of times, a new
 * turn reads it again (a later event is never dated by an earlier turn's
 * reading), and what receivers see stays valid and in order.
 */
import { expect } from 'chai';
import { BurstClock } from '../../src/client/BurstClock';
import { RedisClient } from '../../src/client/RedisClient';
import { onEachRoute } from '../support/routes';
import { until } from '../support/async';

/** Counts the readings of Date.now() made while `work` runs (synchronously). */
function readingsDuring(work: () => void): number {
  const real = Date.now;
  let readings = 0;
  Date.now = () => {
    readings += 1;
    return real();
  };
  try {
    work();
  } finally {
    Date.now = real;
  }
  return readings;
}

describe('BurstClock (the date of events)', () => {
  it('reads the clock once per 32 uses within one turn, and again at the first use of the next turn', async () => {
    const clock = new BurstClock();
    expect(readingsDuring(() => { for (let i = 0; i < 100; i++) clock.now(); })).to.equal(4);
    await Promise.resolve();
    expect(readingsDuring(() => clock.now()), 'a new turn').to.equal(1);
    expect(readingsDuring(() => clock.now()), 'the same turn').to.equal(0);
  });

  it('never gives a later turn an earlier reading: the time a turn starts is at least the time read in the turn before', async () => {
    const clock = new BurstClock();
    const first = clock.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const before = Date.now();
    expect(clock.now()).to.be.at.least(before).and.above(first);
  });
});

onEachRoute('RedisClient: createdAt of a burst', (options) => {
  it('reads the clock for a burst of 100 publishAndForget in one turn at most 4 times (once per 32 events), not once per event', async () => {
    const sender = new RedisClient(options('clock-counter'));
    await sender.connect();
    try {
      const readings = readingsDuring(() => {
        for (let i = 0; i < 100; i++) sender.publishAndForget('service.clock.count', { i });
      });
      expect(readings).to.be.at.most(4);
    } finally {
      await sender.close();
    }
  });


  it('dates a burst of 300 events in one turn in order, within the time the burst took, and the next turn later', async () => {
    const sender = new RedisClient(options('clock-sender'));
    const receiver = new RedisClient(options('clock-receiver'));
    await Promise.all([sender.connect(), receiver.connect()]);
    try {
      const dates: Array<{ i: number; at: number }> = [];
      await receiver.subscribe<{ i: number }>('service.clock.events', (payload, event) => void dates.push({ i: payload.i, at: Date.parse(event.headers.createdAt) }));
      const startedAt = Date.now();
      for (let i = 0; i < 300; i++) sender.publishAndForget('service.clock.events', { i });
      const endedAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 5));
      const laterAt = Date.now();
      sender.publishAndForget('service.clock.events', { i: 300 });
      await until(() => dates.length === 301, 5000, '301 events');
      expect(dates.map((date) => date.i)).to.deep.equal(Array.from({ length: 301 }, (_, i) => i));
      for (let i = 0; i < 300; i++) expect(dates[i].at).to.be.within(startedAt, endedAt);
      for (let i = 1; i < 301; i++) expect(dates[i].at).to.be.at.least(dates[i - 1].at);
      expect(dates[300].at, 'the next turn is read again').to.be.at.least(laterAt);
    } finally {
      await Promise.all([sender.close(), receiver.close()]);
    }
  });
});
