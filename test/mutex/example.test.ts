/**
 * docs/examples/schema-init.ts (seeds/001's use case) runs as a user would
 * run it: N instances start at once and the schema is initialised exactly once.
 */
import { expect } from 'chai';
import { runTs } from '../support/processes';
import { useRedis } from '../support/redis-server';

describe('docs/examples/schema-init.ts', function () {
  this.timeout(60_000);
  const redis = useRedis();

  it('initialises the schema exactly once when 4 instances start at once', async () => {
    const { stdout } = await runTs('docs/examples/schema-init.ts', ['4'], { ...process.env, REDIS_URL: redis().url, INTRACOM_NAMESPACE: redis().namespace });
    const lines = stdout.trim().split('\n');
    expect(lines.filter((line) => /^api-\d: initialised the schema \(fence \d+\)$/.test(line))).to.have.length(1);
    expect(lines.filter((line) => /^api-\d: found the schema ready$/.test(line))).to.have.length(3);
    expect(lines.at(-1)).to.equal('schema v3 initialised exactly once by 4 instances starting at once');
  });
});
