/**
 * Instances of a service closing and starting while a caller keeps calls in
 * flight (docs/rpc.md, "How a call travels", and shutdown.md): a call that reached a closing
 * instance is answered (run there, or refused with the closing fault and
 * sent to another instance), never lost, so even calls that are not
 * idempotent all succeed and each runs once.
 */
import { expect } from 'chai';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { onEachRoute } from '../support/routes';

onEachRoute('RPC instances closing under traffic', (options) => {
  it('64 calls in flight while instances close and start: every call succeeds and its handler ran exactly once', async function () {
    this.timeout(60_000);
    const runs = new Map<number, number>();
    const start = async (): Promise<RedisRPCClient> => {
      const instance = new RedisRPCClient({ ...options('churned'), closeTimeoutMs: 2_000 });
      await instance.connect();
      await instance.expose('record', async ([n]: [number]) => {
        runs.set(n, (runs.get(n) ?? 0) + 1);
        await new Promise<void>((resolve) => setImmediate(resolve));
        return n;
      });
      return instance;
    };
    const caller = new RedisRPCClient(options('churner'));
    await caller.connect();
    const patient = caller.with({ timeoutMs: 10_000 });
    let instances = [await start(), await start(), await start()];
    let next = 0;
    let stop = false;
    const failures: unknown[] = [];
    let answered = 0;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const n = next++;
        try {
          expect(await patient.callService('churned', 'record', n)).to.equal(n);
          answered += 1;
        } catch (error) {
          failures.push(error);
        }
      }
    };
    const loops = Array.from({ length: 64 }, loop);
    try {
      for (let round = 0; round < 8; round++) {
        // wait for traffic to reach the instances, then replace the oldest
        const target = answered + 500;
        while (answered < target && failures.length === 0) await new Promise<void>((resolve) => setTimeout(resolve, 5));
        const [oldest, ...rest] = instances;
        instances = [...rest, await start()];
        await oldest.close();
      }
    } finally {
      stop = true;
      await Promise.all(loops);
      await Promise.all([...instances.map((instance) => instance.close()), caller.close()]);
    }
    const kinds = new Map<string, number>();
    for (const failure of failures) kinds.set(String(failure).slice(0, 160), (kinds.get(String(failure).slice(0, 160)) ?? 0) + 1);
    expect([...kinds]).to.deep.equal([]);
    expect(answered).to.equal(next);
    const twice = [...runs].filter(([, count]) => count !== 1);
    expect(twice).to.deep.equal([]);
    expect(runs.size).to.equal(next);
  });
});
