/**
 * Overload and hostile traffic: what a flood costs is bounded (log lines,
 * handlers in flight, dead letters) and what is shed is counted.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import type { StatusReport } from '../../src/cli/commands/status';
import { RedisClient } from '../../src/client/RedisClient';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { startCli } from '../cli/run';
import { until } from '../support/async';
import { capture } from '../support/logCapture';
import { useRedis } from '../support/redis-server';

describe('overload and hostile traffic', function () {
  this.timeout(30_000);
  const redis = useRedis();
  let raw: Redis;
  const closing: Array<{ close(): Promise<void> }> = [];

  before(() => {
    raw = new Redis(redis().url);
  });
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((c) => c.close()));
  });
  after(() => raw.disconnect());

  it('a slow async subscriber holds at most maxInFlight handlers; the rest is shed, counted in stats() and in `intracom status`', async () => {
    const { logger, lines } = capture();
    const client = new RedisClient({ service: 'slow', redis: redis().url, namespace: redis().namespace, logger, maxInFlight: 50, registry: { heartbeatMs: 100, ttlMs: 1000 } });
    closing.push(client);
    await client.connect();
    const release: Array<() => void> = [];
    let started = 0;
    let peak = 0;
    await client.subscribe('work', () => {
      started += 1;
      peak = Math.max(peak, client.stats().handlersInFlight);
      return new Promise<void>((resolve) => release.push(resolve));
    });
    const publisher = new RedisClient({ service: 'fast', redis: redis().url, namespace: redis().namespace });
    closing.push(publisher);
    await publisher.connect();
    const events = 2000;
    for (let i = 0; i < events; i++) void publisher.publish('work', i);
    await until(() => started + client.stats().shed === events, 10_000, 'every event received');
    expect(started).to.equal(50);
    expect(peak).to.be.at.most(50);
    expect(client.stats().shed).to.equal(events - 50);
    expect(lines.filter((l) => l.msg.includes('events shed')).length).to.be.at.most(2);
    // handlers that finish free their slots
    for (const resolve of release.splice(0)) resolve();
    await until(() => client.stats().handlersInFlight === 0, 5000, 'the handlers to settle');
    await publisher.publish('work', 'after');
    await until(() => started === 51, 5000, 'the next event to be handled');
    // a per-subscription bound overrides the client's
    let tight = 0;
    await client.subscribe('tight', () => new Promise<void>(() => void (tight += 1)), { maxInFlight: 2 });
    for (let i = 0; i < 10; i++) void publisher.publish('tight', i);
    await until(() => client.stats().shed === events - 50 + 8, 5000, 'the tight subscription to shed');
    expect(tight).to.equal(2);
    // an operator sees it: the heartbeat carries the counters to `intracom status`
    await new Promise((resolve) => setTimeout(resolve, 300));
    const run = startCli(['--redis', redis().url, '--namespace', redis().namespace, 'status', '--json']);
    const { code, stdout } = await run.result;
    expect(code).to.equal(0);
    const report = JSON.parse(stdout) as StatusReport;
    const slow = report.services.find((s) => s.service === 'slow');
    expect(slow?.instances[0].shed).to.equal(events - 50 + 8);
  });

  it('dead letters are capped: a flood of garbage keeps maxDeadLetters letters with bounded raw bytes, and counts what it dropped', async () => {
    const rpc = new RedisRPCClient({ service: 'dumped', redis: redis().url, namespace: redis().namespace, queues: { maxDeadLetters: 50, maxDeadLetterRawBytes: 64, blockMs: 100 } });
    closing.push(rpc);
    rpc.handle('work', () => undefined);
    await rpc.connect();
    const stream = rpc.client.names.queryStream('dumped');
    const garbage = 400;
    const pipeline = raw.pipeline();
    for (let i = 0; i < garbage; i++) pipeline.xadd(stream, '*', 'm', Buffer.concat([Buffer.from([0xc1]), Buffer.alloc(10_000, i & 0xff)]));
    await pipeline.exec();
    await until(async () => {
      const status = await rpc.queueStatus('dumped');
      return status.deadLetters + status.deadLettersDropped === garbage;
    }, 15_000, 'every garbage entry dead-lettered or dropped');
    const status = await rpc.queueStatus('dumped');
    expect(status.deadLetters).to.equal(50);
    expect(status.deadLettersDropped).to.equal(garbage - 50);
    const letters = await rpc.deadLetters('dumped', 100);
    expect(letters).to.have.length(50);
    for (const letter of letters) {
      expect(letter.raw?.length).to.equal(64);
      expect(letter.rawBytes).to.equal(10_001);
    }
    // valid work still flows behind the garbage
    const sent = await rpc.fireAndForget('dumped', 'work', { ok: true });
    await until(() => rpc.queryStats().fireAndForget.processed === 1, 10_000, `the query ${sent.queryId} to be processed`);
  });

  it('a flood of malformed frames writes a few warning lines that count the rest, and every frame is counted', async () => {
    const { logger, lines } = capture();
    const client = new RedisClient({ service: 'victim', redis: redis().url, namespace: redis().namespace, logger });
    closing.push(client);
    await client.connect();
    await client.subscribe('flooded', () => undefined);
    const channel = client.names.channel('flooded');
    const frames = 5000;
    const pipeline = raw.pipeline();
    for (let i = 0; i < frames; i++) pipeline.publish(channel, Buffer.from([0xc1, i & 0xff]));
    await pipeline.exec();
    await until(() => client.stats().malformed === frames, 10_000, 'every frame counted');
    const warnings = lines.filter((l) => l.msg.startsWith('malformed'));
    expect(warnings.length).to.be.at.most(3);
    // flushing on close reports what the window left out
    await client.close();
    const counted = lines.filter((l) => l.msg.startsWith('malformed')).reduce((sum, l) => sum + (l.suppressed ?? 0), 0);
    expect(counted + warnings.length).to.equal(frames);
  });
});
