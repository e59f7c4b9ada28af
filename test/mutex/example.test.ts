/**
 * docs/examples/schema-init.ts (seeds/001's use case) runs as a user would
 * run it: N instances start at once and the schema is initialised exactly once.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startRedis, type TestRedis } from '../support/redis-server';

const run = promisify(execFile);

describe('docs/examples/schema-init.ts', function () {
  this.timeout(60_000);
  let redis: TestRedis;

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    await redis.stop();
  });

  it('initialises the schema exactly once when 4 instances start at once', async () => {
    const file = join(__dirname, '..', '..', 'docs', 'examples', 'schema-init.ts');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file, '4'], {
      env: { ...process.env, REDIS_URL: redis.url, INTRACOM_NAMESPACE: redis.namespace },
      timeout: 50_000,
    });
    const lines = stdout.trim().split('\n');
    expect(lines.filter((line) => /^api-\d: initialised the schema \(fence \d+\)$/.test(line))).to.have.length(1);
    expect(lines.filter((line) => /^api-\d: found the schema ready$/.test(line))).to.have.length(3);
    expect(lines.at(-1)).to.equal('schema v3 initialised exactly once by 4 instances starting at once');
  });
});
