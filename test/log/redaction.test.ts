/**
 * A wrong password never reaches a log line in clear: ioredis attaches the
 * failing handshake (`HELLO 3 AUTH <user> <password>`) to its errors, and
 * intracom masks it before logging or handing the error on, through the
 * default logger (a library and the CLI, at their default levels), a user's
 * logger and the error a failed connect rejects with.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { REDACTED, redactArgs } from '../../src/log/redact';
import { runCli } from '../cli/run';
import { startRedis, type TestRedis } from '../support/redis-server';

const PASSWORD = 'WRONGPW-xyz-7f3a';

describe('credentials in logs (r14 B2)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let wrongUrl: string;

  before(async () => {
    redis = await startRedis({ private: true });
    const admin = new Redis(redis.url);
    await admin.acl('SETUSER', 'bob', 'on', '>the-right-one', '~*', '&*', '+@all');
    await admin.quit();
    wrongUrl = redis.url.replace('redis://', `redis://bob:${PASSWORD}@`);
  });
  after(async () => {
    await redis.stop();
  });

  it('the default logger at its default level writes the failure without the password', async () => {
    const script = [
      "const { RedisClient } = require('./src/client/RedisClient');",
      '(async () => {',
      `  const client = new RedisClient({ service: 'pwleak', redis: ${JSON.stringify(wrongUrl)}, connectTimeoutMs: 3000 });`,
      '  await client.connect().catch((error) => process.stdout.write(`rejected ${error.name} ${JSON.stringify(error.cause?.command ?? null)}\\n`));',
      '  await client.close();',
      '})();',
    ].join('\n');
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.INTRACOM_LOG_LEVEL;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..', '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', reject);
      child.on('close', () => resolve({ stdout: out, stderr: err }));
    });
    expect(stdout).to.match(/^rejected /);
    // the failure is still reported, with the command it came from
    expect(stderr).to.contain('WRONGPASS');
    expect(stderr).to.contain(REDACTED);
    expect(stderr + stdout).to.not.contain(PASSWORD);
  });

  it("a user's logger and the rejected error carry no password", async () => {
    const raw: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(chunk.toString());
        done();
      },
    });
    const client = new RedisClient({ service: 'pwleak', redis: wrongUrl, connectTimeoutMs: 3000, logger: pino({ level: 'debug' }, stream) });
    const error = await client.connect().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    await client.close();
    expect(error).to.be.instanceOf(Error);
    expect(raw.join('')).to.contain('WRONGPASS');
    expect(raw.join('')).to.not.contain(PASSWORD);
    const seen = new Set<unknown>();
    const texts: string[] = [];
    for (let e: unknown = error; e instanceof Error && !seen.has(e); e = (e as Error & { cause?: unknown }).cause) {
      seen.add(e);
      texts.push(e.message, JSON.stringify((e as Error & { command?: unknown }).command ?? null));
    }
    expect(texts.join(' ')).to.not.contain(PASSWORD);
  });

  for (const level of ['', 'warn', 'debug']) {
    it(`the CLI with INTRACOM_REDIS_PASSWORD and INTRACOM_LOG_LEVEL=${JSON.stringify(level)} prints no password`, async () => {
      const { code, stdout, stderr } = await runCli(['--redis', redis.url, '--user', 'bob', '--timeout', '3000', 'call', 'calc', 'add', '[1, 2]'], { INTRACOM_REDIS_PASSWORD: PASSWORD, INTRACOM_LOG_LEVEL: level });
      expect(code).to.not.equal(0);
      expect(stderr).to.contain('WRONGPASS');
      expect(stdout + stderr).to.not.contain(PASSWORD);
    });
  }

  it('masks every credential-carrying command ioredis may attach', () => {
    expect(redactArgs('AUTH', ['bob', 'pw'])).to.deep.equal([REDACTED, REDACTED]);
    expect(redactArgs('hello', ['3', 'AUTH', 'bob', 'pw', 'SETNAME', 'x'])).to.deep.equal(['3', 'AUTH', 'bob', REDACTED, 'SETNAME', 'x']);
    expect(redactArgs('acl', ['SETUSER', 'bob', 'on', '>pw'])).to.deep.equal(['SETUSER', 'bob', REDACTED, REDACTED]);
    expect(redactArgs('migrate', ['h', '1', '', '0', '5', 'AUTH2', 'bob', 'pw', 'KEYS', 'k'])).to.deep.equal(['h', '1', '', '0', '5', 'AUTH2', 'bob', REDACTED, 'KEYS', 'k']);
    expect(redactArgs('config', ['SET', 'requirepass', 'pw'])).to.deep.equal(['SET', 'requirepass', REDACTED]);
    expect(redactArgs('get', ['k'])).to.deep.equal(['k']);
  });
});
