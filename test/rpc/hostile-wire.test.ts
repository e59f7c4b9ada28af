/**
 * Hostile frames that a raw Redis publisher writes (msgpackr, not intracom's
 * encoder) to an RPC server or a caller: a cancel on another caller's
 * channel, error replies with fields of the wrong type, names that would
 * build another channel. Each test attacks one promise of docs/protocol.md.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { pack } from 'msgpackr';
import { CancelledError } from '../../src/errors/CancelledError';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { CallContext } from '../../src/rpc/CallContext';
import { startRedis, type TestRedis } from '../support/redis-server';

/** A frame as protocol.md spells it: `[5, message, ...]`, written by msgpackr. */
function frame(...messages: unknown[]): Buffer {
  return Buffer.concat([Buffer.from([0x90 + 1 + messages.length, 0x05]), ...messages.map((message) => pack(message))]);
}

describe('hostile RPC frames from a raw publisher (redis)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let raw: Redis;
  let round = 0;
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });
  const namespace = (): string => `${redis.namespace}w${(round += 1)}`;

  it('a cancel on another caller\'s channel (callers option) leaves the call running; the caller\'s own cancel stops it', async () => {
    const ns = namespace();
    const calc = new RedisRPCClient({ service: 'calc2', redis: redis.url, namespace: ns, callers: ['web', 'billing'] });
    const web = new RedisRPCClient({ service: 'web', redis: redis.url, namespace: ns });
    const billing = new RedisRPCClient({ service: 'billing', redis: redis.url, namespace: ns });
    let started: (context: CallContext) => void = () => undefined;
    const running = new Promise<CallContext>((resolve) => (started = resolve));
    let aborted: (reason: unknown) => void = () => undefined;
    const abort = new Promise<unknown>((resolve) => (aborted = resolve));
    calc.expose('slow', async (_args, context) => {
      started(context);
      await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
      aborted(context.signal.reason);
      return 'aborted';
    });
    calc.expose('ping', () => 'pong');
    await calc.connect();
    await web.connect();
    await billing.connect();
    try {
      const controller = new AbortController();
      const call = web.with({ timeoutMs: 10_000, signal: controller.signal }).callService('calc2', 'slow').catch((error: unknown) => error);
      const context = await running;
      expect(context.callerService).to.equal('web');
      // billing (or anyone who may publish on billing's channel) names web's call
      const billingChannel = calc.client.names.rpcInstance('service.calc2.rpc', calc.instanceId, 'billing');
      expect(await raw.publish(billingChannel, frame({ cancel: context.requestId }))).to.equal(1);
      // billing's own call travels on the same channel, after the cancel: once answered, the cancel was read
      expect(await billing.callService('calc2', 'ping')).to.equal('pong');
      expect(context.signal.aborted).to.equal(false);
      // web's own cancel (its channel) stops it
      controller.abort();
      expect(await call).to.be.instanceOf(CancelledError);
      expect(await abort).to.be.instanceOf(CancelledError);
    } finally {
      await Promise.all([web.close(), billing.close()]);
      await calc.close();
    }
  });
});
