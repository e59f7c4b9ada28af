/**
 * Every example under docs/examples/ runs, as a user would run it, against a
 * real Redis (REDIS_URL in its environment) and exits 0. Examples that also
 * run without Redis are run that way too.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as twoServices } from '../../docs/examples/two-services';
import { execFile } from 'node:child_process';
import { runTs } from '../support/processes';
import { useRedis } from '../support/redis-server';

const directory = join(__dirname, '..', '..', 'docs', 'examples');
// demo.ts keeps the same contract (REDIS_URL set, and without Redis) in demo.test.ts, with its summary checked
const examples = readdirSync(directory)
  .filter((file) => file.endsWith('.ts') && file !== 'demo.ts')
  .sort();

describe('docs/examples', function () {
  this.timeout(60_000);
  const redis = useRedis();

  for (const file of examples) {
    it(`${file} runs against Redis and exits 0`, async () => {
      const { stdout } = await runTs(`docs/examples/${file}`, [], { ...process.env, REDIS_URL: redis().url });
      expect(stdout.length).to.be.greaterThan(0);
    });
    if (readFileSync(join(directory, file), 'utf8').includes('@runs-without-redis')) {
      it(`${file} runs on the memory route and exits 0`, async () => {
        const env = { ...process.env };
        delete env.REDIS_URL;
        const { stdout } = await runTs(`docs/examples/${file}`, [], env);
        expect(stdout).to.match(/route: memory/);
      });
    }
  }

  it("getting-started's first two services run as written (an ES module importing 'intracom'), and the handler prints", async () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'getting-started.md'), 'utf8');
    const snippet = /In a file `first\.mjs`[^]*?```ts\n([^]*?)```/.exec(page)?.[1];
    expect(snippet, 'the snippet of section 3').to.be.a('string');
    const directory = mkdtempSync(join(tmpdir(), 'intracom-first-'));
    try {
      const file = join(directory, 'first.mts');
      writeFileSync(file, snippet as string);
      for (const url of [undefined, redis().url]) {
        const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: join(__dirname, '..', '..', 'tsconfig.json') };
        if (url === undefined) delete env.REDIS_URL;
        else env.REDIS_URL = url;
        const stdout = await new Promise<string>((resolve, reject) => {
          execFile(process.execPath, ['--import', 'tsx', file], { env, cwd: join(__dirname, '..', '..'), timeout: 50_000 }, (error, out, err) => (error ? reject(Object.assign(error, { err })) : resolve(out)));
        });
        expect(stdout.split('\n')).to.include.members(['1', "users { user: 'alice', type: 'USER_CONNECTED' }", "[ 'alice' ]"]);
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('schema-init runs in a "type": "module" project too (an ES module has no __filename)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'intracom-schema-init-'));
    try {
      writeFileSync(join(directory, 'package.json'), '{ "type": "module" }');
      symlinkSync(join(__dirname, '..', '..', 'node_modules'), join(directory, 'node_modules'), 'dir');
      const file = join(directory, 'schema-init.ts');
      writeFileSync(file, readFileSync(join(__dirname, '..', '..', 'docs', 'examples', 'schema-init.ts'), 'utf8'));
      const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: redis().url, TSX_TSCONFIG_PATH: join(__dirname, '..', '..', 'tsconfig.json') };
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['--import', 'tsx', file, '2'], { env, cwd: join(__dirname, '..', '..'), timeout: 50_000 }, (error, out, err) => (error ? reject(Object.assign(error, { err })) : resolve(out)));
      });
      expect(stdout).to.match(/initialised exactly once by 2 instances/);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('two-services tells the whole story on both routes', async () => {
    for (const url of [undefined, redis().url]) {
      const transcript = await twoServices(url);
      expect(transcript).to.include.members([
        'dashboard got USER_CONNECTED for alice from users',
        'dashboard got USER_CONNECTED for bob from users',
        'dashboard got USER_DISCONNECTED for alice from users',
        'online now: 1',
        'users service info: {"hostname":"users-1","port":4040}',
        'live users instances: 1',
      ]);
    }
  });
});
