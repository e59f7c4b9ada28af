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

describe('Deadlines keep the process alive while items wait', () => {
  const timers = (deadlines: Deadlines<Item>) => [...(deadlines as unknown as { lines: Map<number, { timer: NodeJS.Timeout | undefined }> }).lines.values()].map((line) => line.timer?.hasRef());

  it("refs a line's timer while it holds items and unrefs it once emptied", () => {
    const { deadlines } = recorder();
    const a = item('a');
    deadlines.add(a, 60_000);
    expect(timers(deadlines)).to.deep.equal([true]);
    deadlines.remove(a);
    expect(timers(deadlines)).to.deep.equal([false]);
    const b = item('b');
    deadlines.add(b, 60_000);
    expect(timers(deadlines)).to.deep.equal([true]);
    deadlines.clear();
  });

  it('a call on the memory route to a handler that never settles times out with TimeoutError (the process does not exit first)', async function () {
    this.timeout(60_000);
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'intracom-deadline-'));
    const script = join(dir, 'hang.ts');
    writeFileSync(
      script,
      [
        `import { RedisRPCClient } from ${JSON.stringify(join(__dirname, '..', '..', 'src', 'index'))};`,
        'async function main() {',
        "  const a = new RedisRPCClient({ service: 'sx' });",
        "  await a.expose('f', () => new Promise(() => {}));",
        '  await a.connect();',
        "  const b = new RedisRPCClient({ service: 'c' });",
        '  await b.connect();',
        "  try { await b.with({ timeoutMs: 300 }).callService('sx', 'f'); } catch (error) { console.log('call ->', (error as Error).constructor.name); }",
        '  await Promise.all([a.close(), b.close()]);',
        "  console.log('done');",
        '}',
        'void main();',
      ].join('\n'),
    );
    const env = { ...process.env };
    delete env.REDIS_URL;
    try {
      const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = execFile(process.execPath, ['--import', require.resolve('tsx'), script], { env, timeout: 50_000 }, (_error, stdout) => resolve({ code: child.exitCode, stdout }));
      });
      expect(result).to.deep.equal({ code: 0, stdout: 'call -> TimeoutError\ndone\n' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
