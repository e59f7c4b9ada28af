/** The replay window (src/envelope/ReplayWindow.ts): bounded memory, and no frame admitted twice, whatever the order and the load. */
import { expect } from 'chai';
import fc from 'fast-check';
import { ReplayWindow } from '../../src/envelope/ReplayWindow';

describe('ReplayWindow', () => {
  it('never admits one (sender, frame id) twice and never holds more than maxIds, for any arrivals (property)', () => {
    const arrival = fc.record({ sender: fc.constantFrom('a', 'b'), id: fc.integer({ min: 0, max: 40 }), advance: fc.integer({ min: 0, max: 30 }) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(arrival, { maxLength: 300 }), (maxIds, arrivals) => {
        const window = new ReplayWindow(100, maxIds);
        const admitted = new Set<string>();
        let now = 1_000_000;
        for (const { sender, id, advance } of arrivals) {
          now += advance;
          // a frame id is unique per sender and carries one timestamp: derive it from the id, so that a repeat is a replay of the same frame
          const ts = 1_000_000 + id * 7;
          const reason = window.admit(sender, String(id), ts, now);
          const key = `${sender}/${id}`;
          if (reason === undefined) {
            expect(admitted.has(key), `${key} admitted twice`).to.equal(false);
            admitted.add(key);
          }
          expect(window.size).to.be.at.most(maxIds);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses outside the window either way, and admits inside it', () => {
    const window = new ReplayWindow(1000, 10);
    expect(window.admit('a', '1', 5000 - 1001, 5000)).to.match(/ms old/);
    expect(window.admit('a', '2', 5000 + 1001, 5000)).to.match(/ahead/);
    expect(window.admit('a', '3', 5000 - 999, 5000)).to.equal(undefined);
    expect(window.admit('a', '3', 5000 - 999, 5000)).to.match(/seen before/);
    expect(window.admit('b', '3', 5000 - 999, 5000)).to.equal(undefined); // another sender's id
  });

  it('under a flood past maxIds forgets the oldest and refuses frames no newer than it', () => {
    const window = new ReplayWindow(10_000, 3);
    for (let i = 0; i < 4; i++) expect(window.admit('a', String(i), 1000 + i, 2000)).to.equal(undefined);
    expect(window.size).to.equal(3);
    // id 0 was forgotten: its replay is still refused, by its timestamp
    expect(window.admit('a', '0', 1000, 2000)).to.match(/no newer than the oldest frame id forgotten/);
    expect(window.admit('a', '9', 1005, 2000)).to.equal(undefined);
  });
});
