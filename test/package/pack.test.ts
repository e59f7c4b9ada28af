/**
 * What `npm install intracom` gives a user: `npm pack` on a fresh checkout
 * (no dist/) builds and ships the code (prepack), and the tarball, installed
 * in a scratch project, runs a shipped example against a private Redis and
 * on the memory route, and serves an ESM program with top-level await.
 *
 * Offline: the registry is never asked. The tarball is unpacked into the
 * scratch project's node_modules and its runtime dependencies (the closure
 * of `dependencies`, nothing else) are linked from this repository's
 * node_modules, as `npm install <tarball>` would have placed them.
 */
import { expect } from 'chai';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { useRedis } from '../support/redis-server';

const root = join(__dirname, '..', '..');
const TSX_LOADER = require.resolve('tsx');

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

/** The runtime dependency closure of a package, resolved from the repository's node_modules. */
function dependencyClosure(names: string[], seen = new Set<string>()): Set<string> {
  for (const name of names) {
    if (seen.has(name)) continue;
    const manifest = join(root, 'node_modules', name, 'package.json');
    if (!existsSync(manifest)) continue; // an optional dependency not installed here
    seen.add(name);
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    dependencyClosure([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})], seen);
  }
  return seen;
}

describe('the packed package, installed in a scratch project', function () {
  this.timeout(300_000);
  const redis = useRedis({ private: true });
  let work: string;
  let app: string;
  let files: string[];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'intracom-pack-'));
    // a fresh checkout: the files git knows (tracked and new, as in the working tree), no dist/
    const clone = join(work, 'clone');
    const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root }).toString().split('\0').filter(Boolean);
    for (const file of listed) {
      if (!existsSync(join(root, file)) || file === 'node_modules' || file.startsWith('node_modules/')) continue; // deleted in the working tree, or a linked node_modules
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      cpSync(join(root, file), join(clone, file));
    }
    symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
    await run('npm', ['pack', '--pack-destination', work, '--silent'], clone, { ...process.env, npm_config_offline: 'true' }, 240_000);
    const tarball = join(work, readdirSync(work).find((name) => name.endsWith('.tgz')) as string);
    files = execFileSync('tar', ['-tzf', tarball]).toString().split('\n').filter(Boolean);

    // the scratch project: `npm install <tarball>` without the registry
    app = join(work, 'app');
    const installed = join(app, 'node_modules', 'intracom');
    mkdirSync(installed, { recursive: true });
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module' }));
    execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of dependencyClosure(Object.keys(manifest.dependencies))) {
      mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true });
      symlinkSync(join(root, 'node_modules', name), join(app, 'node_modules', name));
    }
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the built code, its declarations and the examples; not the sources or the tests', () => {
    for (const file of ['package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/vars/index.js', 'package/dist/src/testing/index.js', 'package/dist/src/cli/main.js', 'package/docs/examples/two-services.ts', 'package/docs/api-report.md']) {
      expect(files, file).to.include(file);
    }
    expect(files.filter((file) => /^package\/(src|test|vars)\//.test(file))).to.deep.equal([]);
  });

  it("ships examples that import 'intracom', never the repository's sources", () => {
    const examples = files.filter((file) => /^package\/docs\/examples\/.*\.ts$/.test(file));
    expect(examples.length).to.be.greaterThan(0);
    for (const example of examples) {
      const text = readFileSync(join(app, 'node_modules', 'intracom', example.replace(/^package\//, '')), 'utf8');
      expect(text, example).not.to.match(/from '(\.\.\/)+src\//);
    }
  });

  it('runs a shipped example on the memory route and against a private Redis', async () => {
    const example = join('node_modules', 'intracom', 'docs', 'examples', 'two-services.ts');
    const env = { ...process.env };
    delete env.REDIS_URL;
    const memory = await run(process.execPath, ['--import', TSX_LOADER, example], app, env);
    expect(memory.stdout).to.match(/route: memory/).and.include('online now: 1');
    const onRedis = await run(process.execPath, ['--import', TSX_LOADER, example, redis().url], app, env);
    expect(onRedis.stdout).to.match(/route: redis/).and.include('online now: 1');
  });

  it('serves an ESM program with top-level await (intracom and intracom/testing), its logs on stderr', async () => {
    writeFileSync(
      join(app, 'main.js'),
      [
        "import { RedisRPCClient, ValidationError } from 'intracom';",
        "import { MemoryDeployment } from 'intracom/testing';",
        'const deployment = new MemoryDeployment();',
        "const server = new RedisRPCClient({ service: 'calc', ...deployment.options });",
        "const caller = new RedisRPCClient({ service: 'web', ...deployment.options });",
        'await Promise.all([server.connect(), caller.connect()]);',
        "await server.expose('add', ([a, b]) => a + b);",
        "console.log('sum', await caller.callService('calc', 'add', 2, 3), typeof ValidationError);",
        'await Promise.all([server.close(), caller.close()]);',
      ].join('\n'),
    );
    const { stdout, stderr } = await run(process.execPath, ['main.js'], app, { ...process.env, INTRACOM_LOG_LEVEL: 'debug' });
    expect(stdout).to.equal('sum 5 function\n');
    expect(stderr).to.include('"msg":"call answered"');
  });

  it('ships declarations a strict program and the shipped examples compile against without skipLibCheck (module nodenext)', async () => {
    mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
    if (!existsSync(join(app, 'node_modules', '@types', 'node'))) symlinkSync(join(root, 'node_modules', '@types', 'node'), join(app, 'node_modules', '@types', 'node'));
    writeFileSync(
      join(app, 'consumer.ts'),
      [
        "import { RedisClient, RedisMutex, RedisRPCClient, defineFunctions, schema, type MutexLock } from 'intracom';",
        // types that public declarations reach (StreamStore's, RpcStats', the schema helpers'): each nameable by a consumer
        "import type { DeadLetterStore, EntryQueries, ClaimState, RenewResult, RpcCallerStats, RpcServerStats, RpcSpread, QueueConsumerStats, NamesOptions, InferSide, InferTuple, InferObject, StreamStore } from 'intracom';",
        'export type Named = [DeadLetterStore, EntryQueries, ClaimState, RenewResult, RpcCallerStats, RpcServerStats, RpcSpread, QueueConsumerStats, NamesOptions, InferSide<unknown, "input">, InferTuple<[], "output">, InferObject<{}>];',
        "export const claim: Parameters<StreamStore['claimQueries']>[4][number] | ClaimState = 'claimed';",
        "import { MemoryDeployment } from 'intracom/testing';",
        "const Calc = defineFunctions({ service: 'calc' }, { add: { args: [schema.number(), schema.number()], result: schema.number() } });",
        'export async function main(): Promise<number> {',
        '  const deployment = new MemoryDeployment();',
        "  const client = new RedisClient({ service: 'web', ...deployment.options });",
        "  const rpc = new RedisRPCClient({ service: 'web', ...deployment.options });",
        "  const mutex = new RedisMutex({ redis: 'redis://127.0.0.1:1' });",
        "  const lock: MutexLock | null = await mutex.tryAcquire('m', { timeoutMs: 1000 });",
        '  await client.close();',
        "  return (await rpc.callService(Calc, 'add', 1, 2)) + (lock ? 1 : 0);",
        '}',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] }, files: ['consumer.ts', ...files.filter((file) => /^package\/docs\/examples\/.*\.ts$/.test(file)).map((file) => file.replace(/^package\//, 'node_modules/intracom/'))] }),
    );
    const result = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app).catch((error: { stdout: string }) => error);
    expect(result.stdout).to.equal('');
  });

  it('runs the CLI from the installed bin', async () => {
    const { stdout } = await run(process.execPath, [join(app, 'node_modules', 'intracom', 'dist', 'src', 'cli', 'main.js'), 'catalogue'], app);
    expect(stdout).to.match(/^intracom built-in catalogue/);
  });
});
