/**
 * Overload and hostile traffic: what a flood costs is bounded (log lines,
 * handlers in flight, dead letters) and what is shed is counted.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { until } from '../support/async';
import { useRedis } from '../support/redis-server';

interface Line {
  msg: string;
  suppressed?: number;
}

function capture(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'warn' }, { write: (text: string) => void lines.push(JSON.parse(text) as Line) });
  return { logger, lines };
}

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
