/**
 * The short form of `npm run chaos` (test/chaos/run.ts --short): instances
 * under load through a fuzzer, a SIGKILL, CLIENT KILL, an AOF restart of
 * Redis and CLIENT PAUSE. Every invariant the runner checks must hold.
 */
import { expect } from 'chai';
import { runTs } from '../support/processes';

interface Summary {
  type: 'summary';
  ok: boolean;
  ffSent: number;
  ffLost: number;
  ffDuplicates: number;
  quietDuplicates: number;
  duplicateBound: number;
  bcLost: number;
  rpcCalls: number;
  rpcWithin: number;
  fuzzDue: number;
  fuzzReceived: number;
  crashes: number;
}

describe('chaos (short form of npm run chaos)', function () {
  this.timeout(180_000);

  it('loses no durable query, settles every call in time, delivers valid traffic while fuzzed, and nothing crashes', async () => {
    const { stdout, stderr } = await runTs('test/chaos/run.ts', ['--short'], { ...process.env, INTRACOM_LOG_LEVEL: 'silent' }, 170_000).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`the chaos run failed:\n${error.stderr ?? ''}\n${error.stdout ?? ''}`);
    });
    const summary = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string })
      .find((record): record is Summary => record.type === 'summary');
    expect(summary, stderr).to.not.equal(undefined);
    const s = summary as Summary;
    expect(s.ffSent, stderr).to.be.greaterThan(100);
    expect(s.ffLost, stderr).to.equal(0);
    expect(s.bcLost, stderr).to.equal(0);
    expect(s.ffDuplicates, stderr).to.be.at.most(s.duplicateBound);
    expect(s.quietDuplicates, stderr).to.equal(0);
    expect(s.rpcWithin, stderr).to.equal(s.rpcCalls);
    expect(s.fuzzReceived, stderr).to.equal(s.fuzzDue);
    expect(s.crashes, stderr).to.equal(0);
    expect(s.ok, stderr).to.equal(true);
  });
});
