/**
 * The suite proves it leaks nothing (test/support/setup.ts): mocha runs
 * without `exit: true`, a file that leaves a handle open fails the run with
 * the list of what is left, and the process still ends instead of hanging.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

function mocha(file: string): Promise<{ code: number | null; output: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), join('test', 'suite', 'fixtures', file)], {
      cwd: root,
      env: { ...process.env, TEST_LEAK_DRAIN_MS: '2000', TEST_EXIT_WATCHDOG_MS: '3000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output, ms: Date.now() - started }));
  });
}

describe('the suite and leaked handles', function () {
  this.timeout(60_000);

  it('fails a run that leaves a timer and a server open, naming them, and still exits', async () => {
    const run = await mocha('leaky.ts');
    expect(run.code, run.output).to.not.equal(0);
    expect(run.output).to.match(/the tests left handles open/);
    expect(run.output).to.match(/\d x Timeout/).and.match(/\d x TCPServerWrap/).and.match(/server on \{"address":"127\.0\.0\.1"/);
    expect(run.output).to.match(/did not exit 3000 ms after the last test/);
  });

  it('passes a run that closes what it opens, and it exits by itself', async () => {
    const run = await mocha('clean.ts');
    expect(run.code, run.output).to.equal(0);
    expect(run.output).to.match(/1 passing/).and.not.match(/left handles open|did not exit/);
  });
});
