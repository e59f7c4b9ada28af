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
  for (const { title, concurrency, handlerMs, minimumAnswered } of [
    { title: 'quick handlers', concurrency: undefined, handlerMs: 0, minimumAnswered: 1_000 },
    // requests queue at each instance (2 run at once, 20 ms each): a closing instance refuses its queue with the closing fault
    { title: 'requests queued at the instances (concurrency 2, 20 ms handlers)', concurrency: 2, handlerMs: 20, minimumAnswered: 300 },
  ]) {
    it(`64 calls in flight while instances close and start, ${title}: every call succeeds and its handler ran exactly once`, async function () {
      this.timeout(60_000);
      const runs = new Map<number, number>();
      const start = async (): Promise<RedisRPCClient> => {
        const instance = new RedisRPCClient({ ...options('churned'), closeTimeoutMs: 2_000, ...(concurrency === undefined ? {} : { concurrency }) });
        await instance.connect();
        await instance.expose('record', async ([n]: [number]) => {
          runs.set(n, (runs.get(n) ?? 0) + 1);
          await new Promise<void>((resolve) => (handlerMs === 0 ? setImmediate(resolve) : setTimeout(resolve, handlerMs)));
          return n;
        });
        return instance;
      };
      const caller = new RedisRPCClient(options('churner'));
      await caller.connect();
      const patient = caller.with({ timeoutMs: 10_000 });
      const instances = [await start(), await start(), await start(), await start()];
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
      const closing: Array<Promise<void>> = [];
      try {
        // every 100 ms an instance picked at random starts closing (not awaited: closes overlap), then a new one starts
        for (let round = 0; round < 30 && failures.length === 0; round++) {
          await new Promise<void>((resolve) => setTimeout(resolve, 100));
          const [leaving] = instances.splice(Math.floor(Math.random() * instances.length), 1);
          closing.push(leaving.close());
          instances.push(await start());
        }
        expect(answered).to.be.greaterThan(minimumAnswered);
      } finally {
        stop = true;
        await Promise.all(loops);
        await Promise.all([...closing, ...instances.map((instance) => instance.close()), caller.close()]);
      }
      const kinds = new Map<string, number>();
      for (const failure of failures) kinds.set(String(failure).slice(0, 160), (kinds.get(String(failure).slice(0, 160)) ?? 0) + 1);
      expect([...kinds]).to.deep.equal([]);
      expect(answered).to.equal(next);
      const twice = [...runs].filter(([, count]) => count !== 1);
      expect(twice).to.deep.equal([]);
      expect(runs.size).to.equal(next);
    });
  }
});
