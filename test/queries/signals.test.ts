/**
 * A query stops listening to its caller's AbortSignal once it settles: one
 * signal can serve any number of ASYNC/SYNC queries (a request's whole life)
 * without piling up listeners (50 sendSync used to warn MaxListenersExceeded).
 */
import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { RedisRPCClientOptions } from '../../src/rpc/RedisRPCClientOptions';
import { onEachRoute } from '../support/routes';

onEachRoute('ASYNC/SYNC abort listeners', (clientOptions) => {
  const options = (service: string) => clientOptions(service) as RedisRPCClientOptions;

  it('removes its listener from the caller\'s signal when each query settles: 50 sendSync, 50 sendAsync, no warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const worker = new RedisRPCClient(options('signals-worker'));
    const caller = new RedisRPCClient(options('signals-caller'));
    try {
      await Promise.all([worker.connect(), caller.connect()]);
      worker.handle('echo', (value: unknown) => value);
      await worker.connect(); // resolves once the worker answers queries (it joins its service's registry at its first handle())
      const controller = new AbortController();
      for (let i = 0; i < 50; i++) expect(await caller.sendSync('signals-worker', 'echo', i, { signal: controller.signal })).to.equal(i);
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
      const handles = Array.from({ length: 50 }, (_, i) => caller.sendAsync('signals-worker', 'echo', i, { signal: controller.signal }));
      expect(getEventListeners(controller.signal, 'abort').length).to.be.greaterThan(0); // listening while pending
      await Promise.all(handles.map((h) => h.wait()));
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on a later tick
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).to.deep.equal([]);
    } finally {
      process.off('warning', onWarning);
      await Promise.all([caller.close(), worker.close()]);
    }
  });

  it('still cancels every pending query that follows a signal when it fires', async () => {
    const worker = new RedisRPCClient(options('signals-worker2'));
    const caller = new RedisRPCClient(options('signals-caller2'));
    try {
      await Promise.all([worker.connect(), caller.connect()]);
      worker.handle('forever', () => new Promise(() => undefined));
      await worker.connect(); // resolves once the worker answers queries (it joins its service's registry at its first handle())
      const controller = new AbortController();
      const handles = [1, 2, 3].map((i) => caller.sendAsync('signals-worker2', 'forever', i, { signal: controller.signal, timeoutMs: 10_000 }));
      controller.abort(new Error('caller gave up'));
      await Promise.all(handles.map((h) => h.promise));
      expect(handles.map((h) => [h.state, h.error?.name])).to.deep.equal(Array(3).fill(['ERROR', 'CancelledError']));
      expect(getEventListeners(controller.signal, 'abort')).to.have.length(0);
    } finally {
      await Promise.all([caller.close(), worker.close()]);
    }
  });
});
