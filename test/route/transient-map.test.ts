/**
 * TransientMap: a Map rebuilt every 1,024 deletions (and replaced when
 * cleared), so that entries that come and go (calls in flight, messages in
 * progress) leave no chain of replaced hash tables that keeps them alive
 * into the old generation.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { TransientMap } from '../../src/route/TransientMap';
import { promotedBytesPerItem } from '../support/promotion';

describe('TransientMap', () => {
  it('gets, sets and deletes by id, and counts its entries', () => {
    const table = new TransientMap<string, { id: string }>();
    expect(table.size).to.equal(0);
    table.set('a1', { id: 'a1' });
    table.set('b2', { id: 'b2' });
    table.set('a1', { id: 'a1 again' });
    expect(table.size).to.equal(2);
    expect(table.get('a1')).to.deep.equal({ id: 'a1 again' });
    expect(table.delete('a1')).to.equal(true);
    expect(table.delete('a1')).to.equal(false);
    expect(table.get('a1')).to.equal(undefined);
    expect(table.size).to.equal(1);
    expect(table.values()).to.deep.equal([{ id: 'b2' }]);
  });

  it('finds nothing under the names of Object.prototype or of array indices unless they were set (a reply may carry any id)', () => {
    const table = new TransientMap<string, number>();
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '0', '42', 'length']) expect(table.get(key), key).to.equal(undefined);
    table.set('__proto__', 1);
    table.set('42', 2);
    table.set('constructor', 3);
    expect([table.get('__proto__'), table.get('42'), table.get('constructor'), table.size]).to.deep.equal([1, 2, 3, 3]);
    expect(table.values().sort()).to.deep.equal([1, 2, 3]);
    expect(Object.getPrototypeOf({})).to.equal(Object.prototype);
  });

  it('hands out snapshots: keys, values and entries may be walked while the map changes, and a rebuild leaves them as they were', () => {
    const table = new TransientMap<string, number>();
    for (let i = 0; i < 8; i++) table.set(`k${i}`, i);
    const seen: number[] = [];
    for (const value of table.values()) {
      seen.push(value);
      table.delete(`k${value}`);
      table.set(`late${value}`, 100 + value);
    }
    expect(seen).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    const entries = table.entries();
    // enough deletions to rebuild the map underneath
    for (let i = 0; i < 2_000; i++) {
      table.set('churn', i);
      table.delete('churn');
    }
    expect(entries).to.deep.equal(Array.from({ length: 8 }, (_, i) => [`late${i}`, 100 + i]));
    expect(table.entries()).to.deep.equal(entries);
  });

  it('behaves as a Map of the same operations, across its rebuilds (property)', () => {
    // mostly a few keys, so that deletions succeed often enough to rebuild the Map (every 1,024) within a run
    const key = fc.oneof({ arbitrary: fc.constantFrom('k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'), weight: 8 }, fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', '0', '1', 'toString'));
    const operation = fc.oneof(
      { arbitrary: fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }), weight: 40 },
      { arbitrary: fc.record({ kind: fc.constant('delete' as const), key }), weight: 40 },
      { arbitrary: fc.record({ kind: fc.constant('get' as const), key }), weight: 10 },
      { arbitrary: fc.record({ kind: fc.constant('has' as const), key }), weight: 10 },
      { arbitrary: fc.record({ kind: fc.constant('clear' as const) }), weight: 1 },
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 3000 }), (operations) => {
        const table = new TransientMap<string, number>();
        const model = new Map<string, number>();
        for (const op of operations) {
          if (op.kind === 'set') {
            table.set(op.key, op.value);
            model.set(op.key, op.value);
          } else if (op.kind === 'delete') expect(table.delete(op.key)).to.equal(model.delete(op.key));
          else if (op.kind === 'get') expect(table.get(op.key)).to.equal(model.get(op.key));
          else if (op.kind === 'has') expect(table.has(op.key)).to.equal(model.has(op.key));
          else {
            table.clear();
            model.clear();
          }
          expect(table.size).to.equal(model.size);
        }
        expect(table.entries()).to.deep.equal([...model.entries()]);
        expect(table.keys()).to.deep.equal([...model.keys()]);
        expect(table.values()).to.deep.equal([...model.values()]);
      }),
      { numRuns: 60 },
    );
    // the runs above did cross rebuilds: one long run, checked the same way, with thousands of successful deletions
    const table = new TransientMap<string, number>();
    const model = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const name = `k${(i * 7919) % 13}`;
      if (i % 3 === 2) expect(table.delete(name)).to.equal(model.delete(name));
      else {
        table.set(name, i);
        model.set(name, i);
      }
    }
    expect(table.entries()).to.deep.equal([...model.entries()]);
  });

  it('lets entries deleted from it die young (a Map of the same churn promoted nearly every entry: about 150 bytes each)', async function () {
    this.timeout(20_000);
    const table = new TransientMap<string, object>();
    const live: string[] = [];
    let next = 0;
    const churn = (count: number) => {
      for (let i = 0; i < count; i++) {
        const key = `call-${next++}`;
        table.set(key, { next, a: 1, b: 2, c: 3, d: 4, e: 5 });
        live.push(key);
        if (live.length > 64) table.delete(live.shift() as string);
      }
    };
    const promoted = await promotedBytesPerItem(() => churn(64), churn);
    // measured: about 25 bytes per entry, most of them this test's own list of keys; a Map never rebuilt read about 150, an object's dictionary about 40
    expect(promoted, `${promoted.toFixed(0)} bytes per entry reached the old generation`).to.be.below(70);
  });
});
