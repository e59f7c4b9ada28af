/**
 * `npm run demo` as a newcomer runs it: on the memory route (no Redis) and
 * on Redis (one process per service instance). It must exit 0 and its
 * summary must show every capability worked (or, on memory, say why the
 * Redis-only ones were skipped).
 */
import { expect } from 'chai';
import { runTs } from '../support/processes';
import { useRedis } from '../support/redis-server';

const DEMO = 'docs/examples/demo.ts';

const CAPABILITIES = [
  'shared variable + watch',
  'events (module.users.events)',
  'RPC callService',
  'TimeoutError',
  'NoHandlerError',
  'NoServiceError',
  'RemoteError',
  'CancelledError',
  'ASYNC',
  'SYNC',
  'BROADCAST',
  'mutex: schema init runs once',
  'ConnectionLostError',
  'FIRE_AND_FORGET survives a lost instance',
  'flow start chain + audit.*',
];

/** The summary table's rows, by capability: [route, result]. */
function summary(stdout: string): Map<string, [string, string]> {
  const table = stdout.slice(stdout.indexOf('\nSummary'));
  const rows = new Map<string, [string, string]>();
  for (const line of table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| capability'))) {
    const [capability, route, result] = line.slice(2).split(' | ').map((cell) => cell.trim());
    rows.set(capability, [route, result]);
  }
  return rows;
}

describe('the demo (npm run demo)', function () {
  this.timeout(45_000);
  const redis = useRedis();

  it('tells the whole story on the memory route, with no Redis, and exits 0', async () => {
    const env = { ...process.env };
    delete env.REDIS_URL;
    const started = Date.now();
    const { stdout } = await runTs(DEMO, [], env, 40_000);
    expect(Date.now() - started).to.be.below(20_000);
    expect(stdout).to.match(/^route: memory/);
    const rows = summary(stdout);
    expect([...rows.keys()]).to.deep.equal(CAPABILITIES);
    for (const [capability, [route, result]] of rows) {
      expect(route, capability).to.equal('memory');
      if (capability === 'ConnectionLostError') expect(result, capability).to.match(/^skipped: Redis only/);
      else expect(result, capability).not.to.match(/^(FAILED|skipped)/);
    }
    expect(rows.get('mutex: schema init runs once')?.[1]).to.include('1 initialised (SchemaInitRuns = 1)');
    expect(rows.get('FIRE_AND_FORGET survives a lost instance')?.[1]).to.match(/^20\/20 jobs processed/);
    expect(rows.get('BROADCAST')?.[1]).to.include('3/3 instances');
  });

  it('tells the whole story on Redis, one process per instance, and exits 0', async () => {
    const started = Date.now();
    const { stdout } = await runTs(DEMO, [], { ...process.env, REDIS_URL: redis().url }, 40_000);
    expect(Date.now() - started).to.be.below(25_000);
    expect(stdout).to.match(/^route: redis/);
    const rows = summary(stdout);
    expect([...rows.keys()]).to.deep.equal(CAPABILITIES);
    for (const [capability, [route, result]] of rows) {
      expect(route, capability).to.equal('redis');
      expect(result, capability).not.to.match(/^(FAILED|skipped)/);
    }
    expect(rows.get('mutex: schema init runs once')?.[1]).to.include('1 initialised (SchemaInitRuns = 1)');
    expect(rows.get('ConnectionLostError')?.[1]).to.match(/→ ConnectionLostError \d+ ms after the kill/);
    expect(rows.get('FIRE_AND_FORGET survives a lost instance')?.[1]).to.match(/^20\/20 jobs processed.*worker-2 killed/);
  });

  it('prints its usage for --help (exit 0) and refuses an argument that is not a Redis URL (exit 2)', async () => {
    const help = await runTs(DEMO, ['--help'], process.env, 40_000);
    expect(help.stdout).to.match(/^Usage: npm run demo -- \[redis-url\]/);
    const refused = await runTs(DEMO, ['localhost'], process.env, 40_000).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(refused?.code).to.equal(2);
    expect(refused?.stderr).to.match(/^demo: the argument must be a Redis URL \(redis:\/\/ or rediss:\/\/\); received "localhost"/);
  });

  it('exits non-zero with the reason when it cannot work (the URL given as an argument)', async () => {
    const error = await runTs(DEMO, ['redis://127.0.0.1:1'], process.env, 40_000).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).to.equal(1);
    expect(error?.stderr).to.match(/demo failed: .*(ECONNREFUSED|could not connect)/);
  });
});
