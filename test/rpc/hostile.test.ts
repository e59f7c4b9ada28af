/**
 * Whatever bytes a remote party sends to a subscriber, an RPC server or a
 * queue consumer are counted and skipped (or dead-lettered), and the valid
 * traffic interleaved with them still arrives: fast-check drives the bytes,
 * a real Redis carries them.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import Redis from 'ioredis';
import { MsgpackCodec, PROTOCOL_VERSION, decodeFrame } from '../../src/envelope/codec';
import { MemoryBus } from '../../src/route/MemoryBus';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { NoHandlerError } from '../../src/errors/NoHandlerError';
import { startRedis, type TestRedis } from '../support/redis-server';

/** Bytes a hostile or broken peer may send: noise, noise after a frame head, old frames, and a few known offenders. */
function hostileBytes(): fc.Arbitrary<Buffer> {
  const codec = new MsgpackCodec();
  return fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    fc.uint8Array({ maxLength: 60 }).map((bytes) => Buffer.concat([Buffer.from([0x92, PROTOCOL_VERSION]), Buffer.from(bytes)])),
    fc.constantFrom(
      Buffer.from('9202d47243' + '92a178a179' + '0102', 'hex'), // version 2: redefines record slot 0x43
      codec.encode([PROTOCOL_VERSION, { headers: { serviceNameSource: 'x', sourceInstance: 'y' }, payloads: [{ queryId: 'q', action: { toString: 1 } }] }]),
      codec.encode([PROTOCOL_VERSION, { queryId: 'q', serviceNameSource: 'x', sourceInstance: 'y', action: { toString: 1, valueOf: 2 }, query: [], timeout_ms: 5 }]),
      codec.encode([PROTOCOL_VERSION, { toString: 1 }, { headers: { toString: 1 }, payload: 1 }]),
      Buffer.alloc(5000, 0x91),
    ),
  );
}

/** The property on one route: `make` builds an RPC client, `publish` and `append` deliver raw bytes to a channel and a stream. */
async function hostileProperty(make: (options: Record<string, unknown>) => RedisRPCClient, publish: (channel: string, bytes: Buffer) => Promise<unknown>, append: (stream: string, bytes: Buffer) => Promise<unknown>): Promise<void> {
  const server = make({ service: 'hostile', queues: { blockMs: 50 } });
  const caller = make({ service: 'friendly', queues: { consume: false } });
  const events: unknown[] = [];
  const jobs: unknown[] = [];
  let jobArrived: (value: unknown) => void = () => undefined;
  let eventArrived: (value: unknown) => void = () => undefined;
  server.expose('echo', ([value]) => value);
  server.handle('job', (query) => {
    jobs.push(query);
    jobArrived(query);
  });
  await server.connect();
  await caller.connect();
  await server.client.subscribe('module.hostile.events', (payload) => {
    events.push(payload);
    eventArrived(payload);
  });
  const names = server.client.names;
  const eventChannel = names.channel('module.hostile.events');
  const rpcChannel = names.rpcInstance('service.hostile.rpc', server.instanceId);
  const stream = names.queryStream('hostile');
  const codec = new MsgpackCodec();
  let refusedFrames = 0;
  let injected = 0;
  try {
    await fc.assert(
      fc.asyncProperty(hostileBytes(), fc.integer(), async (bytes, marker) => {
        try {
          decodeFrame(codec, bytes, 1 << 20);
        } catch {
          refusedFrames += 1;
        }
        injected += 1;
        await publish(eventChannel, bytes);
        await publish(rpcChannel, bytes);
        await append(stream, bytes);
        const event = new Promise((resolve) => (eventArrived = resolve));
        const job = new Promise((resolve) => (jobArrived = resolve));
        await caller.client.publish('module.hostile.events', { marker });
        expect(await caller.callService('hostile', 'echo', marker)).to.equal(marker);
        await caller.fireAndForget('hostile', 'job', { marker });
        expect(await event).to.deep.equal({ marker });
        expect(await job).to.deep.equal({ marker });
      }),
      { numRuns: 25 },
    );
    const clientStats = server.client.stats();
    // the event subscriber and the RPC server each received every refused frame once
    expect(clientStats.malformed).to.be.at.least(2 * refusedFrames);
    expect(server.stats().malformedRequests + clientStats.malformed).to.be.at.least(injected);
    const deadLetters = await server.deadLetters('hostile', 5000);
    expect(deadLetters.length).to.be.at.least(injected); // one per envelope of a frame, or one for the entry
    expect(deadLetters.every((letter) => letter.reason === 'malformed')).to.equal(true);
  } finally {
    await caller.close();
    await server.close();
  }
}

describe('hostile bytes at a subscriber, an RPC server and a queue consumer (memory route)', function () {
  this.timeout(120_000);
  it('counts and skips or dead-letters every input, and valid traffic sent between them still arrives', async () => {
    const bus = new MemoryBus();
    await hostileProperty(
      (options) => new RedisRPCClient({ ...options, service: options.service as string, route: 'memory', memoryBus: bus }),
      async (channel, bytes) => bus.publish(channel, bytes),
      async (stream, bytes) => bus.streams.add(stream, bytes),
    );
  });
});

describe('hostile bytes at a subscriber, an RPC server and a queue consumer (redis)', function () {
  this.timeout(120_000);
  let redis: TestRedis;
  let raw: Redis;
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('counts and skips or dead-letters every input, and valid traffic sent between them still arrives', async () => {
    const namespace = `${redis.namespace}h`;
    await hostileProperty(
      (options) => new RedisRPCClient({ ...options, service: options.service as string, redis: redis.url, namespace }),
      (channel, bytes) => raw.publish(channel, bytes),
      (stream, bytes) => raw.xadd(stream, '*', 'm', bytes),
    );
  });

  it('answers the valid requests of a frame whose other request has an action with a non-callable toString', async () => {
    const namespace = `${redis.namespace}a`;
    const server = new RedisRPCClient({ service: 'hostile', redis: redis.url, namespace });
    server.expose('echo', ([value]) => value);
    await server.connect();
    const names = server.client.names;
    const codec = new MsgpackCodec();
    const listener = new Redis(redis.url);
    try {
      const replies: unknown[] = [];
      const two = new Promise<void>((resolve) =>
        listener.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
          replies.push(...decodeFrame(codec, frame, 1 << 20));
          if (replies.length >= 2) resolve();
        }),
      );
      await listener.subscribe(names.rpcReplies('py', 'p1', 'hostile'));
      const frame = codec.encode([
        PROTOCOL_VERSION,
        {
          headers: { serviceNameSource: 'py', sourceInstance: 'p1' },
          payloads: [
            { queryId: 'bad', action: { toString: 1 }, query: [], timeout_ms: 1000 },
            { queryId: 'good', action: 'echo', query: ['still answered'], timeout_ms: 1000 },
          ],
        },
      ]);
      await raw.publish(names.rpcInstance('service.hostile.rpc', server.instanceId), frame);
      await two;
      expect(replies).to.deep.include({ queryId: 'good', result: 'still answered' });
      expect(replies.find((reply) => (reply as { queryId: string }).queryId === 'bad')).to.include({ fault: 'malformed' });
      expect(server.stats().malformedRequests).to.equal(1);
    } finally {
      listener.disconnect();
      await server.close();
    }
  });

  it('takes SYNC and ASYNC as the lean request of docs/protocol.md, and no error names a reserved function', async () => {
    const namespace = `${redis.namespace}s`;
    const server = new RedisRPCClient({ service: 'worker', redis: redis.url, namespace });
    const caller = new RedisRPCClient({ service: 'web', redis: redis.url, namespace, queues: { consume: false } });
    server.handle('measure', (query: { image: string }, context) => ({ size: query.image.length, type: context.type, from: context.serviceNameSource }));
    server.handle(7, () => 'seven');
    await server.connect();
    await caller.connect();
    const names = server.client.names;
    const codec = new MsgpackCodec();
    const listener = new Redis(redis.url);
    try {
      const replies = new Map<string, unknown>();
      let arrived: () => void = () => undefined;
      listener.on('messageBuffer', (_channel: Buffer, frame: Buffer) => {
        for (const reply of decodeFrame(codec, frame, 1 << 20)) replies.set((reply as { queryId: string }).queryId, reply);
        if (replies.size >= 4) arrived();
      });
      await listener.subscribe(names.rpcReplies('py', 'p1', 'worker'));
      const all = new Promise<void>((resolve) => (arrived = resolve));
      const head = { serviceNameSource: 'py', sourceInstance: 'p1' };
      await raw.publish(
        names.rpcInstance('service.worker.rpc', server.instanceId),
        codec.encode([
          PROTOCOL_VERSION,
          { ...head, queryId: 's1', type: 'SYNC', action: 'measure', query: { image: 'cat.png' }, timeout_ms: 1000 },
          { ...head, queryId: 'a1', type: 'ASYNC', action: 7, query: null, timeout_ms: 1000 },
          { ...head, queryId: 'n1', type: 'SYNC', action: 'nothing', query: 1, timeout_ms: 1000 },
          { ...head, queryId: 'f1', action: '$query', query: [], timeout_ms: 1000 },
        ]),
      );
      await all;
      expect(replies.get('s1')).to.deep.equal({ queryId: 's1', result: { size: 7, type: 'SYNC', from: 'py' } });
      expect(replies.get('a1')).to.deep.equal({ queryId: 'a1', result: 'seven' });
      expect(replies.get('n1')).to.deep.include({ fault: 'no-handler' });
      expect((replies.get('n1') as { error: { errorName: string } }).error.errorName).to.equal('NoHandlerError');
      // like an unknown function, an unknown action's reply lists what the instance handles
      expect((replies.get('n1') as { error: { data: unknown } }).error.data).to.deep.equal({ available: ['measure', '7'] });
      expect(replies.get('f1')).to.deep.include({ fault: 'no-handler' }); // a function call cannot reach the query handler

      expect(await caller.sendSync('worker', 'measure', { image: 'dog' })).to.deep.include({ size: 3, type: 'SYNC', from: 'web' });
      const handle = caller.sendAsync('worker', 7);
      await handle.promise;
      expect(handle.state).to.equal('DONE');
      expect(handle.result).to.equal('seven');
      const failures = (await Promise.all([
        caller.sendSync('worker', 'nothing').catch((error: Error) => error),
        caller.sendSync('nobody', 'measure').catch((error: Error) => error),
      ])) as Error[];
      expect(failures[0].name).to.equal('NoHandlerError');
      expect((failures[0] as NoHandlerError).available).to.include('measure');
      expect(failures[0].message).to.match(/^"worker" handles no action "nothing" \(it handles: .*"measure"/);
      expect(failures[1].name).to.equal('NoServiceError');
      for (const failure of failures) expect(failure.message).to.not.include('$query');
    } finally {
      listener.disconnect();
      await caller.close();
      await server.close();
    }
  });
});

describe('hostile replies at a caller (memory)', () => {
  it('matches replies by id only: ids named like Object.prototype members, repeated and forged replies leave every call its own result', async () => {
    const bus = new MemoryBus();
    const server = new RedisRPCClient({ service: 'calc', route: 'memory', memoryBus: bus });
    const caller = new RedisRPCClient({ service: 'web', route: 'memory', memoryBus: bus });
    const ids: string[] = [];
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    server.expose('slow', async ([value], context) => {
      ids.push(context.requestId);
      await gate;
      return value;
    });
    await server.connect();
    await caller.connect();
    try {
      const calls = Array.from({ length: 5 }, (_, i) => caller.callService('calc', 'slow', `answer ${i}`));
      while (ids.length < 5) await new Promise((resolve) => setImmediate(resolve));
      const codec = new MsgpackCodec();
      const channel = caller.client.names.rpcReplies('web', caller.instanceId, 'calc');
      const before = caller.stats();
      const forged = [
        ...['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '0', ''].map((queryId) => ({ queryId, result: 'forged' })),
        { queryId: '__proto__', error: { ok: false, errorName: 'Error', message: 'forged' }, instanceId: server.instanceId },
      ];
      bus.publish(channel, codec.encode([PROTOCOL_VERSION, ...forged]));
      // a second copy of each, and two replies for one call still running: the first one settles it, the other is late
      bus.publish(channel, codec.encode([PROTOCOL_VERSION, ...forged, { queryId: ids[0], result: 'first' }, { queryId: ids[0], result: 'second' }]));
      open();
      const results = await Promise.all(calls);
      expect(results).to.deep.equal(['first', 'answer 1', 'answer 2', 'answer 3', 'answer 4']);
      const after = caller.stats();
      // 16 forged replies and the second reply to ids[0] found no call, and so did the server's own reply to it
      expect(after.lateReplies - before.lateReplies).to.equal(2 * forged.length + 2);
      expect(after.inFlight).to.equal(0);
      expect(await caller.callService('calc', 'slow', 'after')).to.equal('after');
    } finally {
      await caller.close();
      await server.close();
    }
  });
});
