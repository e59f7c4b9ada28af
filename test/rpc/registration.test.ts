/**
 * Only instances that serve something are RPC targets: a client that only
 * calls (the getting-started shape) joins no RPC registry, creates no
 * `service.<key>.rpc` key and is not listed by `intracom status`; the first
 * expose() or handle() makes it a target, and SYNC queries then reach it.
 */
import { expect } from 'chai';
import { readStatus } from '../../src/cli/commands/status';
import { NoServiceError } from '../../src/errors/index';
import { RedisClient } from '../../src/client/RedisClient';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { onEachRoute } from '../support/routes';
import { rejection } from '../support/async';
import { Names } from '../../vars/names';

onEachRoute('RPC registration', (options, route) => {
  let observer: RedisClient;
  let observerRpc: RedisRPCClient;

  before(async () => {
    observer = new RedisClient(options('observer'));
    observerRpc = new RedisRPCClient({ client: observer });
    await observerRpc.connect();
  });
  after(async () => {
    await observerRpc.close();
    await observer.close();
  });

  /** The instances registered as serving `service.<service>.rpc`, and on Redis the registry keys of that target. */
  async function registryKeysOf(service: string): Promise<string[]> {
    const live = await observer.route.liveInstances(Names.rpcRegistry(`service.${service}.rpc`));
    const keys = route === 'redis' ? (await observer.route.keys(observer.names.serviceScanPattern('instances'))).filter((key) => key.includes(`service.${service}.rpc`)) : [];
    return [...live.map(() => 'live instance'), ...keys];
  }

  it('a caller-only client (connects, calls, is called back by nothing) is no RPC target and creates no registry key for one', async () => {
    const server = new RedisRPCClient(options('regcalc'));
    const caller = new RedisRPCClient(options('regweb'));
    await Promise.all([server.connect(), caller.connect()]);
    try {
      await server.expose('add', ([a, b]: [number, number]) => a + b);
      expect(await caller.callService('regcalc', 'add', 2, 3)).to.equal(5);
      expect(await registryKeysOf('regweb')).to.deep.equal([]);
      expect(await observer.route.liveInstances(Names.rpcRegistry('service.regweb.rpc'))).to.deep.equal([]);
      if (route === 'redis') {
        const status = await readStatus(observer, observerRpc);
        expect(status.rpcTargets.map((t) => t.target)).to.include('service.regcalc.rpc').and.not.include('service.regweb.rpc');
      }
      // still an instance of its service, in the instance registry
      expect((await observer.instances('regweb')).map((i) => i.instanceId)).to.deep.equal([caller.instanceId]);
      // a SYNC query to it finds no instance serving it
      expect(await rejection(server.sendSync('regweb', 'ping', null, { timeoutMs: 1000 }))).to.be.instanceOf(NoServiceError);
    } finally {
      await Promise.all([server.close(), caller.close()]);
    }
  });

  it('handle() after connect makes it a target: connect() resolves once it serves, and SYNC queries reach it', async () => {
    const worker = new RedisRPCClient(options('regworker'));
    const caller = new RedisRPCClient(options('regcaller2'));
    await Promise.all([worker.connect(), caller.connect()]);
    try {
      expect(await registryKeysOf('regworker')).to.deep.equal([]);
      worker.handle('ping', (query: string) => `pong ${query}`);
      await worker.connect();
      expect((await registryKeysOf('regworker')).length).to.be.greaterThan(0);
      expect(await caller.sendSync('regworker', 'ping', 'x')).to.equal('pong x');
    } finally {
      await Promise.all([worker.close(), caller.close()]);
    }
  });

  it('handle() before connect serves from connect on', async () => {
    const worker = new RedisRPCClient(options('regearly'));
    const caller = new RedisRPCClient(options('regcaller3'));
    worker.handle('ping', () => 'pong');
    await Promise.all([worker.connect(), caller.connect()]);
    try {
      expect(await caller.sendSync('regearly', 'ping')).to.equal('pong');
    } finally {
      await Promise.all([worker.close(), caller.close()]);
    }
  });
});
