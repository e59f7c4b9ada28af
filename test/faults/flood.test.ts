/**
 * Frames that hold many invalid messages: each is counted, but a frame costs
 * one report (a subscriber's `malformed` event, a caller's log line) and one
 * dead letter, however many it holds. The receiver keeps answering and its
 * registry entry stays live while it reads them, and a stream entry cannot
 * push the dead-letter store's other letters out.
 */
import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { MsgpackCodec, PROTOCOL_VERSION, encodeFrame } from '../../src/envelope/codec';
import { createQuery } from '../../src/envelope/query';
import { QueryType } from '../../src/envelope/types';
import { MalformedMessageError } from '../../src/errors/index';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { defineVar } from '../../vars/define';
import { until } from '../support/async';
import { capture } from '../support/logCapture';
import { useRawRedis } from '../support/raw-redis';

const quiet = pino({ level: 'silent' });
const codec = new MsgpackCodec();

/** A frame of `count` nils (none of them a message of any kind), written as a foreign sender can: array 32 header, the version, the nils. */
function nilFrame(count: number): Buffer {
  const frame = Buffer.alloc(6 + count, 0xc0);
  frame[0] = 0xdd;
  frame.writeUInt32BE(count + 1, 1);
  frame[5] = PROTOCOL_VERSION;
  return frame;
}

/**
 * Watches an instance's registry entry from another thread (its own event
 * loop, so a stalled receiver cannot stall the watch): every 10 ms it asks
 * Redis whether the entry's expiry (scored on Redis's clock) has passed.
 */
function watchRegistry(url: string, key: string, member: string): { stop(): Promise<{ polls: number; lapses: number }> } {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const Redis = require(require.resolve('ioredis', { paths: [workerData.cwd] }));
    const redis = new Redis(workerData.url);
    const script = "local t = redis.call('TIME') local s = redis.call('ZSCORE', KEYS[1], ARGV[1]) return { s or '0', t[1] * 1000 + math.floor(t[2] / 1000) }";
    let polls = 0, lapses = 0, stopped = false;
    parentPort.on('message', () => { stopped = true; });
    (async () => {
      while (!stopped) {
        const [score, now] = await redis.eval(script, 1, workerData.key, workerData.member);
        polls += 1;
        if (Number(score) <= Number(now)) lapses += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      redis.disconnect();
      parentPort.postMessage({ polls, lapses });
    })();
  `;
  const worker = new Worker(source, { eval: true, workerData: { url, key, member, cwd: process.cwd() } });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        worker.once('message', (result: { polls: number; lapses: number }) => void worker.terminate().then(() => resolve(result), reject));
        worker.once('error', reject);
        worker.postMessage('stop');
      }),
  };
}

/** Runs `flood` while {@link watchRegistry} watches the registry entry of `client`; what the watch saw (it polled at least once). */
async function watchingRegistry(url: string, client: RedisClient, flood: () => Promise<void>): Promise<{ polls: number; lapses: number }> {
  const watch = watchRegistry(url, client.names.instanceSet(client.service), client.instanceId);
  let watched: { polls: number; lapses: number } | undefined;
  try {
    await flood();
  } finally {
    watched = await watch.stop();
  }
  expect(watched.polls).to.be.greaterThan(0);
  return watched;
}

describe('frames of many invalid messages: one report a frame, every message counted, the receiver keeps going', function () {
  this.timeout(30_000);
  const fixture = useRawRedis();
  const redis = () => fixture.redis;
  const closing: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((c) => c.close()));
  });

  async function client(service: string, options: Record<string, unknown> = {}): Promise<RedisClient> {
    const made = new RedisClient({ service, redis: redis().url, namespace: redis().namespace, logger: quiet, ...options });
    closing.push(made);
    await made.connect();
    return made;
  }

  /** A client subscribed to module.x.events: what its handler got, its malformed reports, and the topic's channel. */
  async function subscriber(): Promise<{ receiver: RedisClient; delivered: unknown[]; reports: MalformedMessageError[]; channel: string }> {
    const receiver = await client('receiver');
    const delivered: unknown[] = [];
    await receiver.subscribe('module.x.events', (payload) => void delivered.push(payload));
    const reports: MalformedMessageError[] = [];
    receiver.on('malformed', (error: MalformedMessageError) => reports.push(error));
    return { receiver, delivered, reports, channel: receiver.names.channel('module.x.events') };
  }

  it('a subscriber: one malformed event per frame carrying the count and the first reasons; invalidEvents counts each message; the next event arrives', async () => {
    const { receiver, delivered, reports, channel } = await subscriber();
    const invalid = 200_000;
    await fixture.raw.publish(channel, nilFrame(invalid));
    await until(() => reports.length === 1, 10_000, 'the report of the first frame');
    const headers = { name: 'module.x.events', createdAt: new Date().toISOString(), serviceName: 'foreign' };
    // valid events on both sides of invalid ones, in one frame
    await fixture.raw.publish(channel, encodeFrame(codec, [{ headers, payload: 'first' }, 1, 2, { headers, payload: 'last' }]));
    await until(() => delivered.length === 2 && reports.length === 2, 10_000, 'the valid events and the second report');
    expect(delivered).to.deep.equal(['first', 'last']);
    expect(receiver.stats().invalidEvents).to.equal(invalid + 2);
    expect(reports.map((e) => e.count)).to.deep.equal([invalid, 2]);
    expect(reports[0]).to.be.instanceOf(MalformedMessageError);
    expect(reports[0].source).to.equal(channel);
    expect(reports[0].reasons).to.deep.equal(['event is not an object', 'event is not an object', 'event is not an object']);
    expect(reports[0].message).to.match(/200000 malformed messages received together; the first 3 reasons: event is not an object/);
  });

  it('the registry heartbeat stays live while frames of invalid messages are read, with nobody listening on malformed', async () => {
    const { logger, lines } = capture();
    const receiver = await client('stalled', { logger, registry: { heartbeatMs: 100, ttlMs: 1000 } });
    await receiver.subscribe('module.x.events', () => undefined);
    await floodWatched(receiver, receiver.names.channel('module.x.events'), () => receiver.stats().invalidEvents);
    // the instance answers: it sees itself live in the registry
    expect((await receiver.instances('stalled')).map((i) => i.instanceId)).to.include(receiver.instanceId);
    // one warning line at most per frame (rate-limited further), not one per message
    expect(lines.filter((l) => l.msg === 'malformed message skipped').length).to.be.at.most(1);
  });

  it('a watcher: a frame of invalid variable changes is one report; every change is counted', async () => {
    const watcher = await client('web');
    const ratio = defineVar({ name: 'Ratio', type: 'number', owner: 'ops', description: 'a ratio' });
    const seen: unknown[] = [];
    const reports: MalformedMessageError[] = [];
    watcher.on('malformed', (e: MalformedMessageError) => reports.push(e));
    await watcher.watch(ratio, (change) => void seen.push(change.value));
    const channel = watcher.names.variableChanged('ops', 'Ratio');
    const headers = { name: 'intracom.var.ops.Ratio', createdAt: new Date().toISOString(), serviceName: 'foreign' };
    const invalid = 50_000;
    const payloads: unknown[] = new Array(invalid).fill(1);
    payloads.push({ key: null, value: 0.5, deleted: false });
    await fixture.raw.publish(channel, encodeFrame(codec, [{ headers, payloads }]));
    await until(() => seen.length === 1 && reports.length === 1, 10_000, 'the valid change and the report');
    expect(seen).to.deep.equal([0.5]);
    expect(reports[0].count).to.equal(invalid);
    expect(watcher.stats().invalidEvents).to.equal(invalid);
  });

  /** calc (exposing add) and web, connected; `watched` of them logs to `logger` and beats every 100 ms, its registry entry lasting 1 s. */
  async function rpcPair(watched: 'calc' | 'web', logger: pino.Logger): Promise<{ server: RedisRPCClient; caller: RedisRPCClient }> {
    const make = (service: string): RedisRPCClient => {
      const options = service === watched ? { logger, registry: { heartbeatMs: 100, ttlMs: 1000 } } : { logger: quiet };
      const rpc = new RedisRPCClient({ service, redis: redis().url, namespace: redis().namespace, queues: { consume: false }, ...options });
      closing.push(rpc);
      return rpc;
    };
    const server = make('calc');
    await server.expose('add', ([a, b]) => (a as number) + (b as number));
    await server.connect();
    const caller = make('web');
    await caller.connect();
    return { server, caller };
  }

  /** Three frames of 250,000 nils on `channel`, until `counted()` says each was counted: the registry entry of `client` never lapsed meanwhile. */
  async function floodWatched(client: RedisClient, channel: string, counted: () => number): Promise<void> {
    const frames = 3;
    const invalid = 250_000;
    const watched = await watchingRegistry(redis().url, client, async () => {
      for (let i = 0; i < frames; i++) await fixture.raw.publish(channel, nilFrame(invalid));
      await until(() => counted() === frames * invalid, 15_000, 'every invalid message counted');
    });
    expect(watched.lapses, 'polls that found the registry entry expired').to.equal(0);
  }

  it('a caller: invalid replies on its reply channel are counted one by one and logged once a frame; its registry entry stays live', async () => {
    const { logger, lines } = capture();
    const { caller } = await rpcPair('web', logger);
    expect(await caller.callService('calc', 'add', 1, 2)).to.equal(3);
    await floodWatched(caller.client, caller.client.names.rpcReplies('web', caller.instanceId, 'calc'), () => caller.stats().malformedReplies);
    expect(await caller.callService('calc', 'add', 2, 2)).to.equal(4);
    expect(lines.filter((l) => l.msg === 'malformed RPC reply skipped').length).to.equal(1);
  });

  it('a server: invalid requests on its instance channel are counted one by one while it keeps its registry entry and answers', async () => {
    const { logger, lines } = capture();
    const { server, caller } = await rpcPair('calc', logger);
    await floodWatched(server.client, server.client.names.rpcInstance('service.calc.rpc', server.instanceId), () => server.stats().malformedRequests);
    expect(await caller.callService('calc', 'add', 2, 2)).to.equal(4);
    expect(lines.filter((l) => l.msg === 'malformed RPC request skipped').length).to.equal(1);
  });

  it('an event with both payload and payloads, or named for another topic, is refused as malformed; the braced name of a variable channel is its topic', async () => {
    const { receiver, delivered, reports, channel } = await subscriber();
    const headers = { name: 'module.x.events', createdAt: new Date().toISOString(), serviceName: 'foreign' };
    await fixture.raw.publish(channel, encodeFrame(codec, [{ headers, payload: 1, payloads: [2, 3] }]));
    await fixture.raw.publish(channel, encodeFrame(codec, [{ headers: { ...headers, name: 'module.z.events' }, payload: 4 }]));
    await fixture.raw.publish(channel, encodeFrame(codec, [{ headers, payload: 'valid' }]));
    await until(() => delivered.length === 1 && reports.length === 2, 5000, 'the valid event and two reports');
    expect(delivered).to.deep.equal(['valid']);
    expect(receiver.stats().invalidEvents).to.equal(2);
    expect(reports[0].message).to.match(/event has both payload and payloads/);
    expect(reports[1].message).to.match(/event\.headers\.name "module\.z\.events" is not the topic of its channel \("module\.x\.events"\)/);

    const ratio = defineVar({ name: 'Ratio', type: 'number', owner: 'ops', description: 'a ratio' });
    const seen: unknown[] = [];
    await receiver.watch(ratio, (change) => void seen.push(change.value));
    const varHeaders = { ...headers, name: 'intracom.var.{ops}.Ratio' };
    await fixture.raw.publish(receiver.names.variableChanged('ops', 'Ratio'), encodeFrame(codec, [{ headers: varHeaders, payload: { key: null, value: 0.25, deleted: false } }]));
    await until(() => seen.length === 1, 5000, 'the change');
    expect(seen).to.deep.equal([0.25]);
    expect(receiver.stats().invalidEvents).to.equal(2);
  });

  it('a stream entry of many invalid messages is one dead letter: the store keeps its other letters, the entry\'s queries and those behind it run', async () => {
    const processed: unknown[] = [];
    const worker = new RedisRPCClient({ service: 'jobs', redis: redis().url, namespace: redis().namespace, logger: quiet, queues: { blockMs: 50, maxDeadLetters: 100 } });
    closing.push(worker);
    worker.handle('ok', (query) => void processed.push(query));
    await worker.connect();
    const sender = new RedisRPCClient({ service: 'sender', redis: redis().url, namespace: redis().namespace, logger: quiet, queues: { consume: false } });
    closing.push(sender);
    await sender.connect();
    // a legitimate letter first
    const lost = await sender.fireAndForget('jobs', 'nobody-handles-this', 'keep me');
    await until(async () => (await worker.deadLetters('jobs')).length === 1, 10_000, 'the legitimate letter');
    const invalid = 1000;
    const query = (n: number) => createQuery({ serviceNameSource: 'foreign', serviceNameDest: 'jobs', type: QueryType.FIRE_AND_FORGET, action: 'ok', query: n, timeout_ms: 0 });
    const messages: unknown[] = [query(1), ...new Array(invalid).fill(null), query(2)];
    const entry = encodeFrame(codec, messages);
    await fixture.raw.xadd(worker.client.names.queryStream('jobs'), '*', 'm', entry);
    await sender.fireAndForget('jobs', 'ok', 3);
    await until(() => processed.length === 3, 10_000, 'the queries of the entry and the one behind it');
    expect(processed).to.have.members([1, 2, 3]);
    const letters = await worker.deadLetters('jobs');
    expect(letters.map((l) => l.reason)).to.deep.equal(['no-handler', 'malformed']);
    expect(letters[0].query?.queryId).to.equal(lost.queryId);
    const letter = letters[1];
    expect(letter.invalidMessages).to.equal(invalid);
    expect(letter.query).to.equal(null);
    expect(letter.detail).to.equal(`${invalid} of the entry's ${invalid + 2} messages are not queries; the first 3 reasons: query is not an object; query is not an object; query is not an object`);
    expect(letter.rawBytes).to.equal(entry.length);
    expect(Buffer.compare(letter.raw as Buffer, entry.subarray(0, 4096))).to.equal(0);
    const status = await worker.queueStatus('jobs');
    expect(status.deadLettersDropped).to.equal(0);
    expect(status.fireAndForget).to.deep.include({ depth: 0, pending: 0 });
  });
});
