/**
 * Where intracom's logs go and what they carry: stderr by default (stdout
 * stays the program's), the user's logger when given, service and instance
 * bound once with one `module` key per line, and a debug story of connect,
 * subscribe and call.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { defaultLogger } from '../../src/log/logger';
import { ValidationError } from '../../src/index';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { MemoryDeployment } from '../../src/testing/MemoryDeployment';

/** A pino logger writing into an array of parsed lines. */
function capture(level = 'debug'): { logger: pino.Logger; lines: Array<Record<string, unknown>>; raw: string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level }, stream), lines, raw };
}

describe('logging', function () {
  this.timeout(30_000);

  it('goes to stderr by default, never stdout, at INTRACOM_LOG_LEVEL', async () => {
    const script = [
      "const { RedisClient } = require('./src/client/RedisClient');",
      '(async () => {',
      "  const client = new RedisClient({ service: 'quiet', route: 'memory' });",
      '  await client.connect();',
      "  await client.subscribe('module.quiet.events', () => undefined);",
      '  await client.close();',
      "  process.stdout.write('program output\\n');",
      '})();',
    ].join('\n');
    const run = (level: string) =>
      new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..', '..'), env: { ...process.env, INTRACOM_LOG_LEVEL: level }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('error', reject);
        child.on('close', () => resolve({ stdout, stderr }));
      });
    const debug = await run('debug');
    expect(debug.stdout).to.equal('program output\n');
    const messages = debug.stderr.trim().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).to.include.members(['connected; instance announced in the registry', 'subscribed']);
    const quiet = await run('warn');
    expect(quiet).to.deep.equal({ stdout: 'program output\n', stderr: '' });
  });

  it("uses the user's logger: service and instance bound once, one module key a line, the story of a call at debug", async () => {
    const { logger, lines, raw } = capture();
    const deployment = new MemoryDeployment();
    const server = new RedisRPCClient({ service: 'calc', instanceId: 'calc-1', logger, ...deployment.options });
    const caller = new RedisRPCClient({ service: 'web', instanceId: 'web-1', logger, ...deployment.options });
    await Promise.all([server.connect(), caller.connect()]);
    await server.expose('add', ([a, b]: [number, number]) => a + b);
    expect(await caller.callService('calc', 'add', 2, 3)).to.equal(5);
    const mutex = new RedisMutex({ redis: caller.client });
    mutex.logger.info('mutex line');
    await Promise.all([server.close(), caller.close(), mutex.close()]);

    for (const line of raw) expect(line.match(/"module":/g)?.length ?? 0, line).to.equal(1);
    for (const line of lines) expect(line, JSON.stringify(line)).to.have.property('service').that.is.oneOf(['calc', 'web']);
    const sent = lines.find((line) => line.msg === 'call sent');
    expect(sent).to.include({ service: 'web', instanceId: 'web-1', module: 'rpc', target: 'calc', fn: 'add', instance: 'calc-1' });
    const answered = lines.find((line) => line.msg === 'call answered');
    expect(answered).to.include({ service: 'web', module: 'rpc', requestId: sent?.requestId });
    expect(lines.find((line) => line.msg === 'serving: subscribed and announced')).to.include({ service: 'calc', instanceId: 'calc-1', module: 'rpc' });
    expect(lines.find((line) => line.msg === 'mutex line')).to.include({ service: 'web', instanceId: 'web-1', module: 'mutex' });
    const connected = lines.filter((line) => line.msg === 'connected; instance announced in the registry').map((line) => line.service);
    expect(connected).to.have.members(['calc', 'web']);
  });

  it('logs a handler failing on every redelivery once per window, then the count of the repeats it left out', async () => {
    const { logger, lines } = capture('warn');
    const deployment = new MemoryDeployment();
    const worker = new RedisRPCClient({ service: 'flaky', logger, queues: { visibilityTimeoutMs: 50, blockMs: 20, maxAttempts: 5 }, ...deployment.options });
    const sender = new RedisRPCClient({ service: 'sender', logger, queues: { consume: false }, ...deployment.options });
    let attempts = 0;
    let lastAttempt: () => void = () => undefined;
    const allAttempts = new Promise<void>((resolve) => (lastAttempt = resolve));
    worker.handle('fail', () => {
      attempts += 1;
      if (attempts === 5) lastAttempt();
      throw new Error('always fails');
    });
    await Promise.all([worker.connect(), sender.connect()]);
    await sender.fireAndForget('flaky', 'fail', {});
    await allAttempts;
    await Promise.all([worker.close(), sender.close()]);
    const failures = lines.filter((line) => line.msg === 'query handler failed; it will be redelivered');
    expect(failures, JSON.stringify(lines)).to.have.length(1);
    expect(failures[0]).to.include({ service: 'flaky', module: 'queues' });
    const repeats = lines.find((line) => line.msg === 'query handler failed; it will be redelivered (repeats left out)');
    expect(repeats, JSON.stringify(lines)).to.include({ service: 'flaky', module: 'queues' });
    expect(repeats?.suppressed).to.be.at.least(3);
  });

  it('refuses a logger that is not one, naming the option', () => {
    expect(() => new RedisClient({ service: 'x', route: 'memory', logger: 'stdout' as unknown as pino.Logger })).to.throw(/logger must be a pino logger.*received "stdout"/);
  });
});

describe('INTRACOM_LOG_LEVEL', () => {
  it('refuses a bad value with ValidationError naming the variable and the value', () => {
    const saved = process.env.INTRACOM_LOG_LEVEL;
    process.env.INTRACOM_LOG_LEVEL = 'loud';
    try {
      expect(() => defaultLogger()).to.throw(ValidationError, /INTRACOM_LOG_LEVEL must be one of .*; received "loud"/);
    } finally {
      if (saved === undefined) delete process.env.INTRACOM_LOG_LEVEL;
      else process.env.INTRACOM_LOG_LEVEL = saved;
    }
  });
});
