/**
 * Hostile frames that a raw Redis publisher writes (msgpackr, not intracom's
 * encoder) to an RPC server or a caller: a cancel on another caller's
 * channel, error replies with fields of the wrong type, names that would
 * build another channel. Each test attacks one promise of docs/protocol.md.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { Unpackr } from 'msgpackr';
import { CancelledError } from '../../src/errors/CancelledError';
import { MalformedMessageError } from '../../src/errors/MalformedMessageError';
import { RemoteError } from '../../src/errors/RemoteError';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { CallContext } from '../../src/rpc/CallContext';
import { rawFrame as frame, useRawRedis } from '../support/raw-redis';

const unpacker = new Unpackr({ useRecords: false, mapsAsObjects: true });

describe('hostile RPC frames from a raw publisher (redis)', function () {
  this.timeout(30_000);
  const fixture = useRawRedis();
  let round = 0;
  const namespace = (): string => `${fixture.redis.namespace}w${(round += 1)}`;

  it('a cancel on another caller\'s channel (callers option) leaves the call running; the caller\'s own cancel stops it', async () => {
    const ns = namespace();
    const calc = new RedisRPCClient({ service: 'calc2', redis: fixture.redis.url, namespace: ns, callers: ['web', 'billing'] });
    const web = new RedisRPCClient({ service: 'web', redis: fixture.redis.url, namespace: ns });
    const billing = new RedisRPCClient({ service: 'billing', redis: fixture.redis.url, namespace: ns });
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
      expect(await fixture.raw.publish(billingChannel, frame({ cancel: context.requestId }))).to.equal(1);
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

  it('an error reply with fields of the wrong type settles its call at once with MalformedMessageError; a well-formed one gives a RemoteError of string fields', async () => {
    const ns = namespace();
    const calc = new RedisRPCClient({ service: 'calc', redis: fixture.redis.url, namespace: ns });
    const web = new RedisRPCClient({ service: 'web', redis: fixture.redis.url, namespace: ns });
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const arrivals: Array<(id: string) => void> = [];
    calc.expose('hang', async (_args, context) => {
      arrivals.shift()?.(context.requestId);
      await released;
      return 'too late';
    });
    await calc.connect();
    await web.connect();
    const replyChannel = web.client.names.rpcReplies('web', web.instanceId, 'calc');
    const instanceId = calc.instanceId;
    /** Starts a call, lets the raw publisher answer it with `replies(queryId)`, resolves with how the call ended. */
    const answered = async (replies: (queryId: string) => unknown[]): Promise<unknown> => {
      const arrived = new Promise<string>((resolve) => arrivals.push(resolve));
      const call = web.with({ timeoutMs: 20_000 }).callService('calc', 'hang').catch((error: unknown) => error);
      const queryId = await arrived;
      for (const reply of replies(queryId)) expect(await fixture.raw.publish(replyChannel, frame(reply))).to.equal(1);
      return call;
    };
    try {
      const before = web.stats();
      const malformed: Array<[string, (queryId: string) => unknown, RegExp]> = [
        ['error not a map', (queryId) => ({ queryId, instanceId, error: 'boom' }), /reply\.error is not a map .*received "boom"/],
        ['errorName a number', (queryId) => ({ queryId, instanceId, error: { ok: false, errorName: 5, message: ['x'] } }), /reply\.error\.errorName is not a string; received 5/],
        ['message missing', (queryId) => ({ queryId, instanceId, error: { ok: false, errorName: 'E' } }), /reply\.error\.message is not a string; received undefined/],
        ['ok true', (queryId) => ({ queryId, instanceId, error: { ok: true, errorName: 'E', message: 'm' } }), /reply\.error\.ok is not false; received true/],
        ['code a number', (queryId) => ({ queryId, instanceId, error: { ok: false, errorName: 'E', message: 'm', code: 7 } }), /reply\.error\.code is neither absent nor a string; received 7/],
        ['unknown fault', (queryId) => ({ queryId, instanceId, error: { ok: false, errorName: 'E', message: 'm' }, fault: 'weird' }), /reply\.fault is not one of .*received "weird"/],
        ['no instanceId', (queryId) => ({ queryId, error: { ok: false, errorName: 'E', message: 'm' } }), /reply\.instanceId is not a string; received undefined/],
        ['neither result nor error', (queryId) => ({ queryId }), /reply has neither result nor error/],
      ];
      for (const [label, reply, reason] of malformed) {
        const ending = await answered((queryId) => [reply(queryId)]);
        expect(ending, label).to.be.instanceOf(MalformedMessageError);
        expect((ending as MalformedMessageError).source, label).to.equal(replyChannel);
        expect((ending as Error).message, label).to.match(reason).and.to.include('"calc" function "hang"');
      }
      expect(web.stats().malformedReplies - before.malformedReplies).to.equal(malformed.length);
      // a garbage error reply from an instance the call is not at is late, not the call's answer: the next reply still settles it
      const late = await answered((queryId) => [
        { queryId, instanceId: 'other', error: 'boom' },
        { queryId, result: 'after' },
      ]);
      expect(late).to.equal('after');
      // a well-formed error reply: a RemoteError whose every field has its documented type
      const remote = await answered((queryId) => [{ queryId, instanceId, error: { ok: false, errorName: 'KeyError', message: 'no such key', code: 'E_PY', data: { key: 1 } } }]);
      expect(remote).to.be.instanceOf(RemoteError);
      expect(remote).to.include({ remoteName: 'KeyError', remoteMessage: 'no such key', remoteCode: 'E_PY', instanceId });
      expect((remote as RemoteError).data).to.deep.equal({ key: 1 });
      expect(web.stats().inFlight).to.equal(0);
    } finally {
      release();
      await web.close();
      await calc.close();
    }
  });

  it('a request whose caller names break the name rules is refused and answered on no channel built from them; a malformed one with valid names gets its fault', async () => {
    const ns = namespace();
    const calc = new RedisRPCClient({ service: 'calc', redis: fixture.redis.url, namespace: ns });
    const gate = new RedisRPCClient({ service: 'gate', redis: fixture.redis.url, namespace: ns, callers: ['web'] });
    let ran = 0;
    calc.expose('add', ([a, b]: [number, number]) => {
      ran += 1;
      return a + b;
    });
    gate.expose('add', ([a, b]: [number, number]) => {
      ran += 1;
      return a + b;
    });
    await calc.connect();
    await gate.connect();
    const sniffer = new Redis(fixture.redis.url);
    const heard: string[] = [];
    let heardGood: () => void = () => undefined;
    const good = new Promise<void>((resolve) => (heardGood = resolve));
    const goodChannel = calc.client.names.rpcReplies('py', 'p1', 'calc');
    const gateChannel = gate.client.names.rpcReplies('web', 'w1', 'gate');
    const replies: Array<{ queryId: string; fault?: string }> = [];
    sniffer.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, bytes: Buffer) => {
      heard.push(channel.toString());
      replies.push(...(unpacker.unpack(bytes) as Array<{ queryId: string }>).slice(1));
      if (replies.length >= 3) heardGood();
    });
    try {
      await sniffer.psubscribe(`${ns}:intracom.rpc.reply.*`);
      const channel = calc.client.names.rpcInstance('service.calc.rpc', calc.instanceId);
      const call = (queryId: string, serviceNameSource: string, sourceInstance: string): Record<string, unknown> => ({ queryId, serviceNameSource, sourceInstance, action: 'add', query: [1, 2], timeout_ms: 2000 });
      const hostile: Array<[string, string]> = [
        ['a}b*', 'p1'],
        ['x.from.y', 'p1'],
        ['py', 'events'],
        ['py', 'p1.from.{evil}'],
        ['py', 'a*'],
      ];
      for (const [i, [service, instance]] of hostile.entries()) {
        expect(await fixture.raw.publish(channel, frame(call(`lone${i}`, service, instance)))).to.equal(1);
        const { queryId, action, query, timeout_ms } = call(`batch${i}`, service, instance);
        expect(await fixture.raw.publish(channel, frame({ headers: { serviceNameSource: service, sourceInstance: instance }, payloads: [{ queryId, action, query, timeout_ms }] }))).to.equal(1);
      }
      // on a caller's own channel the service is known, but a bad instance id still builds no channel
      const webChannel = gate.client.names.rpcInstance('service.gate.rpc', gate.instanceId, 'web');
      expect(await fixture.raw.publish(webChannel, frame(call('inst', 'web', 'w1.from.{evil}')))).to.equal(1);
      // a malformed request with valid names is answered with its fault, and a valid one runs
      expect(await fixture.raw.publish(channel, frame({ ...call('bad-action', 'py', 'p1'), action: 5 }))).to.equal(1);
      expect(await fixture.raw.publish(channel, frame(call('good', 'py', 'p1')))).to.equal(1);
      expect(await fixture.raw.publish(webChannel, frame(call('gate-good', 'web', 'w1')))).to.equal(1);
      await good;
      expect(heard.every((c) => c === goodChannel || c === gateChannel), heard.join(', ')).to.equal(true);
      expect(replies.map(({ queryId, fault }) => [queryId, fault])).to.have.deep.members([
        ['bad-action', 'malformed'],
        ['good', undefined],
        ['gate-good', undefined],
      ]);
      expect(ran).to.equal(2);
      expect(calc.stats().malformedRequests).to.equal(2 * hostile.length + 1);
      expect(gate.stats().malformedRequests).to.equal(1);
    } finally {
      sniffer.disconnect();
      await calc.close();
      await gate.close();
    }
  });
});
