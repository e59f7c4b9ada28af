/**
 * Deadlines: the call timeouts of RpcCaller, kept in lines per duration with
 * one timer per line instead of one timer per call.
 */
import { expect } from 'chai';
import { performance } from 'node:perf_hooks';
import { Deadlines, type Timed } from '../../src/rpc/Deadlines';

interface Item extends Timed {
  name: string;
  added: number;
}

function item(name: string): Item {
  return { name, added: performance.now(), deadline: 0, line: undefined, earlier: undefined, later: undefined };
}

/** Deadlines whose expiries are recorded, with a way to await the n-th one. */
function recorder() {
  const expired: Array<{ name: string; afterMs: number; late: number }> = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const deadlines = new Deadlines<Item>((it) => {
    const now = performance.now();
    expired.push({ name: it.name, afterMs: now - it.added, late: now - it.deadline });
    for (const waiter of waiters.filter((w) => expired.length >= w.count)) waiter.resolve();
  });
  const until = (count: number) => new Promise<void>((resolve) => (expired.length >= count ? resolve() : waiters.push({ count, resolve })));
  return { deadlines, expired, until };
}

describe('Deadlines', () => {
  it('expires the items of one duration in order, each once its duration has passed and not before', async () => {
    const { deadlines, expired, until } = recorder();
    for (const name of ['a', 'b', 'c']) deadlines.add(item(name), 30);
    await until(3);
    expect(expired.map((e) => e.name)).to.deep.equal(['a', 'b', 'c']);
    for (const e of expired) {
      expect(e.afterMs).to.be.at.least(30);
      expect(e.late).to.be.at.least(0);
    }
  });

  it('never expires a removed item, wherever it stood in its line', async () => {
    const { deadlines, expired, until } = recorder();
    const items = ['first', 'middle', 'last', 'after'].map(item);
    for (const it of items) deadlines.add(it, 20);
    deadlines.remove(items[0]);
    deadlines.remove(items[1]);
    deadlines.remove(items[1]); // twice: harmless
    await until(2);
    expect(expired.map((e) => e.name)).to.deep.equal(['last', 'after']);
    expect(items[0].line).to.equal(undefined);
  });

  it('keeps a line per duration: a short deadline added after a long one expires first', async () => {
    const { deadlines, expired, until } = recorder();
    deadlines.add(item('long'), 80);
    deadlines.add(item('short'), 10);
    await until(2);
    expect(expired.map((e) => e.name)).to.deep.equal(['short', 'long']);
    expect(expired[1].afterMs).to.be.at.least(80);
  });

  it('waits again for the new first when the first was removed before its timer fired', async () => {
    const { deadlines, expired, until } = recorder();
    const early = item('early');
    deadlines.add(early, 20);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the second item must be added later than the first
    deadlines.add(item('later'), 20);
    deadlines.remove(early);
    await until(1);
    expect(expired.map((e) => e.name)).to.deep.equal(['later']);
    expect(expired[0].afterMs).to.be.at.least(20);
  });

  it('lets an expiry handler add to the line that is firing', async () => {
    const names: string[] = [];
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const deadlines: Deadlines<Item> = new Deadlines<Item>((it) => {
      names.push(it.name);
      if (it.name === 'one') deadlines.add(item('two'), 15);
      else resolveDone();
    });
    deadlines.add(item('one'), 15);
    await done;
    expect(names).to.deep.equal(['one', 'two']);
  });

  it('stops every timer on clear()', async () => {
    const { deadlines, expired } = recorder();
    const cleared = item('cleared');
    deadlines.add(cleared, 10);
    deadlines.clear();
    expect(cleared.line).to.equal(undefined);
    // a control line added after clear() fires; the cleared item, due earlier, must not have
    const control = recorder();
    control.deadlines.add(item('control'), 30);
    await control.until(1);
    expect(expired).to.deep.equal([]);
  });
});
