/**
 * CallTable: the calls of a caller in flight by id, in a Map rebuilt every
 * 1,024 deletions, so that calls that come and go leave no chain of
 * replaced hash tables that keeps them alive into the old generation.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { CallTable } from '../../src/rpc/CallTable';
import { promotedBytesPerItem } from '../support/promotion';

describe('CallTable', () => {
  it('gets, sets and deletes by id, and counts its entries', () => {
    const table = new CallTable<{ id: string }>();
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
    const table = new CallTable<number>();
    for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '0', '42', 'length']) expect(table.get(key), key).to.equal(undefined);
    table.set('__proto__', 1);
    table.set('42', 2);
    table.set('constructor', 3);
    expect([table.get('__proto__'), table.get('42'), table.get('constructor'), table.size]).to.deep.equal([1, 2, 3, 3]);
    expect(table.values().sort()).to.deep.equal([1, 2, 3]);
    expect(Object.getPrototypeOf({})).to.equal(Object.prototype);
  });

  it('behaves as a Map of the same operations (property)', () => {
    const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', 'constructor', '0', '1', 'toString'));
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key, value: fc.integer() }),
      fc.record({ kind: fc.constant('delete' as const), key }),
      fc.record({ kind: fc.constant('get' as const), key }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 200 }), (operations) => {
        const table = new CallTable<number>();
        const model = new Map<string, number>();
        for (const op of operations) {
          if (op.kind === 'set') {
            table.set(op.key, op.value);
            model.set(op.key, op.value);
          } else if (op.kind === 'delete') expect(table.delete(op.key)).to.equal(model.delete(op.key));
          else expect(table.get(op.key)).to.equal(model.get(op.key));
          expect(table.size).to.equal(model.size);
        }
        expect(table.values().sort()).to.deep.equal([...model.values()].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('lets entries deleted from it die young (a Map of the same churn promoted nearly every entry: about 150 bytes each)', async function () {
    this.timeout(20_000);
    const table = new CallTable<object>();
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
