/**
 * RateLimitedLog: a flood of one warning writes a few lines, and the counts
 * of what was left out always add up to what happened.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import pino from 'pino';
import { RateLimitedLog } from '../../src/log/RateLimitedLog';

interface Line {
  level: number;
  msg: string;
  key?: string;
  suppressed?: number;
  [field: string]: unknown;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  return { logger, lines };
}

describe('RateLimitedLog', () => {
  it('writes one line per key and window, and the next line says how many were left out', () => {
    const { logger, lines } = capture();
    let now = 0;
    const log = new RateLimitedLog(logger, { intervalMs: 1000 }, () => now);
    for (let i = 0; i < 100_000; i++) log.warn('bad-frame', { channel: 'a' }, 'malformed frame skipped');
    expect(lines).to.have.length(1);
    expect(log.suppressedTotal).to.equal(99_999);
    now = 1000;
    log.warn('bad-frame', { channel: 'a' }, 'malformed frame skipped');
    expect(lines).to.have.length(2);
    expect(lines[1]).to.include({ suppressed: 99_999, windowMs: 1000, channel: 'a', msg: 'malformed frame skipped' });
  });

  it('keeps keys apart, and flush() reports what is still counted', () => {
    const { logger, lines } = capture();
    const log = new RateLimitedLog(logger, { intervalMs: 60_000, burst: 2 }, () => 0);
    for (let i = 0; i < 5; i++) log.warn('a', {}, 'warning a');
    for (let i = 0; i < 3; i++) log.error('b', {}, 'warning b');
    expect(lines.map((l) => l.msg)).to.deep.equal(['warning a', 'warning a', 'warning b', 'warning b']);
    log.flush();
    const reports = lines.slice(4).map(({ level, key, suppressed, windowMs, msg }) => ({ level, key, suppressed, windowMs, msg }));
    expect(reports).to.have.deep.members([
      { level: 40, key: 'a', suppressed: 3, windowMs: 60_000, msg: 'warning a (repeats left out)' },
      { level: 50, key: 'b', suppressed: 1, windowMs: 60_000, msg: 'warning b (repeats left out)' },
    ]);
  });

  it('remembers a bounded number of keys (invented keys cannot grow it), still counting everything', () => {
    const { logger, lines } = capture();
    const log = new RateLimitedLog(logger, { intervalMs: 60_000, maxKeys: 16 }, () => 0);
    for (let i = 0; i < 10_000; i++) log.warn(`key-${i % 5000}`, {}, 'w');
    expect((log as unknown as { windows: Map<string, unknown> }).windows.size).to.be.at.most(16);
    log.flush();
    const written = lines.filter((l) => l.suppressed === undefined).length;
    const reported = lines.reduce((sum, l) => sum + (l.suppressed ?? 0), 0);
    expect(written + reported).to.equal(10_000);
  });

  it('property: lines written plus counts reported equal the occurrences, and no key writes more than its burst per window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), advance: fc.nat({ max: 700 }) }), { maxLength: 300 }),
        fc.integer({ min: 1, max: 3 }),
        (events, burst) => {
          const { logger, lines } = capture();
          let now = 0;
          const log = new RateLimitedLog(logger, { intervalMs: 1000, burst }, () => now);
          const times: Record<string, number[]> = { a: [], b: [], c: [] };
          for (const { key, advance } of events) {
            now += advance;
            if (log.warn(key, { k: key }, 'w')) times[key].push(now);
          }
          log.flush();
          const written = lines.filter((l) => l.msg === 'w').length;
          const reported = lines.reduce((sum, l) => sum + (l.suppressed ?? 0), 0);
          expect(written + reported).to.equal(events.length);
          // a key writes at most `burst` lines per window, so any span shorter than a window holds at most two windows' worth
          for (const at of Object.values(times)) {
            for (const start of at) expect(at.filter((t) => t >= start && t < start + 1000).length).to.be.at.most(2 * burst);
          }
        },
      ),
    );
  });

  it('refuses a bad option by name', () => {
    const { logger } = capture();
    expect(() => new RateLimitedLog(logger, { intervalMs: 0 })).to.throw(/intervalMs must be a positive integer; received 0/);
  });
});
