/**
 * The `intracom` CLI as a user runs it: a separate process, against a real
 * Redis (private namespace), its output and exit codes asserted. The
 * services it talks to are hosted in this test process.
 */
import { expect } from 'chai';
import { builtinCatalogue, CancelledError, QueryType, RedisClient, RedisMutex, RedisRPCClient, type MutexLock } from '../../src/index';
import { renderCatalogueMarkdown } from '../../vars/render';
import type { StatusReport } from '../../src/cli/commands/status';
import { startRedis, type TestRedis } from '../support/redis-server';
import { runCli, startCli } from './run';

/** A promise with its resolver, for handlers that tell the test they ran. */
function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('intracom CLI (a process against a real Redis)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let namespace: string;
  let calc1: RedisRPCClient;
  let calc2: RedisRPCClient;
  let publisher: RedisClient;
  let mutex: RedisMutex;
  let lock: MutexLock;
  let global: string[];
  const slowStarted = new Set<() => void>();
  const resized: string[] = [];
  const resizeSeen = new Set<() => void>();
  const reloads: string[] = [];
  const reloadSeen = new Set<() => void>();
  let explodes = true;

  const notify = (set: Set<() => void>): void => {
    for (const fn of [...set]) fn();
  };
  const until = (set: Set<() => void>, predicate: () => boolean, what: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (predicate()) return resolve();
      const timer = setTimeout(() => reject(new Error(`${what} did not happen`)), 10_000);
      const check = (): void => {
        if (!predicate()) return;
        set.delete(check);
        clearTimeout(timer);
        resolve();
      };
      set.add(check);
    });

  before(async () => {
    redis = await startRedis();
    namespace = `${redis.namespace}cli`;
    global = ['--redis', redis.url, '--namespace', namespace];
    const settings = { redis: redis.url, namespace, registry: { heartbeatMs: 200, ttlMs: 1000 }, queues: { visibilityTimeoutMs: 1000, blockMs: 100, maxAttempts: 1 } };
    const serve = async (instanceId: string): Promise<RedisRPCClient> => {
      const rpc = new RedisRPCClient({ service: 'calc', instanceId, ...settings });
      await rpc.expose('add', ([a, b]: [number, number]) => a + b);
      await rpc.expose('fail', () => {
        throw new RangeError('the abacus is broken');
      });
      await rpc.expose('nothing', () => undefined);
      await rpc.expose('slow', async ([ms]: [number], context) => {
        notify(slowStarted);
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, ms);
          // stops early on a cancel only: at the deadline the caller has already given up (TimeoutError)
          context.signal.addEventListener('abort', () => context.signal.reason instanceof CancelledError && (clearTimeout(timer), resolve(undefined)), { once: true });
        });
        return 'slow done';
      });
      rpc.handle('resize', ({ image }: { image: string }) => {
        resized.push(image);
        notify(resizeSeen);
      });
      rpc.handle('reload', () => {
        reloads.push(instanceId);
        notify(reloadSeen);
      });
      rpc.handle('report', ({ format }: { format: string }) => ({ format, rows: 3, by: 'calc' }));
      rpc.handle('explode', () => {
        if (explodes) throw new Error('the explosion handler fails');
        return 'fine now';
      });
      await rpc.connect();
      return rpc;
    };
    calc1 = await serve('calc-1');
    calc2 = await serve('calc-2');
    publisher = new RedisClient({ service: 'calc', instanceId: 'calc-publisher', redis: redis.url, namespace });
    await publisher.connect();
    mutex = new RedisMutex({ redis: redis.url, namespace });
    lock = await mutex.acquire('nightly-report', { nodeId: 'reporter-1', timeoutMs: 600_000 }); // held for the whole file, however slow the machine
  });

  after(async () => {
    await lock?.release().catch(() => undefined);
    await mutex?.close();
    await Promise.all([calc1?.close(), calc2?.close(), publisher?.close()]);
    await redis?.stop();
  });

  it('wraps every help page to 80 columns', async () => {
    const pages = await Promise.all([[], ['catalogue'], ['watch'], ['call'], ['send'], ['status'], ['dead-letters'], ['acl']].map((command) => runCli([...command, '--help'])));
    for (const page of pages) {
      expect(page.code).to.equal(0);
      expect(page.stdout).to.include('Usage: intracom');
      expect(Math.max(...page.stdout.split('\n').map((line) => line.length))).to.be.at.most(80);
    }
  });

  describe('catalogue', () => {
    it('prints the catalogue as text, markdown and JSON, without Redis', async () => {
      const [text, markdown, json] = await Promise.all([
        runCli(['catalogue']),
        runCli(['catalogue', '--format', 'markdown']),
        runCli(['catalogue', '--format', 'json']),
      ]);
      expect(text.code).to.equal(0);
      expect(text.stdout).to.match(/^intracom built-in catalogue/).and.match(/Variables \(\d+\)/).and.match(/Topics \(\d+\)/).and.include('UserLoginAttempts [user uuid]');
      // wrapped for a terminal: no line longer than 80 columns (the descriptions run on indented lines)
      for (const line of text.stdout.split('\n')) expect(line.length, line).to.be.at.most(80);
      expect(text.stdout).to.include('  UserLoginAttempts\n    key UserLoginAttempts [user uuid] · integer · owner auth · ttl 120 s\n');
      expect(markdown.code).to.equal(0);
      expect(markdown.stdout).to.equal(renderCatalogueMarkdown());
      expect(json.code).to.equal(0);
      const parsed = JSON.parse(json.stdout) as typeof builtinCatalogue;
      expect(parsed.vars.UserLoginAttempts).to.deep.include({ name: 'UserLoginAttempts', type: 'integer', keyed: true });
      expect(parsed.topics.ModuleEvents.name).to.equal('module.<name>.events');
    });
  });

  describe('call', () => {
    it('prints the result as JSON and exits 0', async () => {
      const { code, stdout, stderr } = await runCli([...global, 'call', 'calc', 'add', '[2, 3]']);
      expect(stderr).to.equal('');
      expect(code).to.equal(0);
      expect(JSON.parse(stdout)).to.equal(5);
    });

    it('prints null (valid JSON) for a function that returns nothing', async () => {
      const { code, stdout } = await runCli([...global, 'call', 'calc', 'nothing']);
      expect(code).to.equal(0);
      expect(JSON.parse(stdout)).to.equal(null);
    });

    it('tells the story of a call on stderr with INTRACOM_LOG_LEVEL=debug (stdout keeps only the result)', async () => {
      const { code, stdout, stderr } = await runCli([...global, 'call', 'calc', 'add', '[2, 3]'], { INTRACOM_LOG_LEVEL: 'debug' });
      expect(code).to.equal(0);
      expect(stdout.trim()).to.equal('5');
      const lines = stderr.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
      const story = lines.map((line) => line.msg);
      for (const step of ['connecting to redis', 'connected to redis', 'connected; instance announced in the registry', 'subscribed to the reply channel', 'call sent', 'call answered']) {
        expect(story, step).to.include(step);
      }
      expect(story.indexOf('call sent')).to.be.lessThan(story.indexOf('call answered'));
      const sent = lines.find((line) => line.msg === 'call sent') as Record<string, unknown>;
      expect(sent).to.include({ service: 'intracom-cli', module: 'rpc', target: 'calc', fn: 'add' });
      for (const line of stderr.trim().split('\n')) expect(line.match(/"module":/g)?.length ?? 0, line).to.be.at.most(1);
    });

    it('names the error class and exits with its code: Timeout 4, NoHandler 5, NoService 6, Remote 7', async () => {
      const [timeout, noHandler, noService, remote] = await Promise.all([
        runCli([...global, '--timeout', '400', 'call', 'calc', 'slow', '[3000]']),
        runCli([...global, 'call', 'calc', 'divide', '[1, 0]']),
        runCli([...global, 'call', 'billing', 'charge', '[10]']),
        runCli([...global, 'call', 'calc', 'fail']),
      ]);
      expect(timeout.code, timeout.stderr).to.equal(4);
      expect(timeout.stderr).to.match(/^intracom: TimeoutError: /);
      expect(noHandler.code, noHandler.stderr).to.equal(5);
      expect(noHandler.stderr).to.match(/^intracom: NoHandlerError: /);
      expect(noService.code, noService.stderr).to.equal(6);
      expect(noService.stderr).to.match(/^intracom: NoServiceError: /);
      expect(remote.code, remote.stderr).to.equal(7);
      expect(remote.stderr).to.match(/^intracom: RemoteError: .*RangeError: the abacus is broken/);
      for (const run of [timeout, noHandler, noService, remote]) expect(run.stdout).to.equal('');
    });

    it('cancels the call on Ctrl-C: CancelledError, exit 9', async () => {
      const started = signal();
      slowStarted.add(started.resolve);
      const run = startCli([...global, 'call', 'calc', 'slow', '[10000]']);
      await started.promise;
      slowStarted.delete(started.resolve);
      run.child.kill('SIGINT');
      const { code, stderr } = await run.result;
      expect(code, stderr).to.equal(9);
      expect(stderr).to.match(/^intracom: CancelledError: /);
    });
  });

  describe('send', () => {
    it('FIRE_AND_FORGET: stored, then processed by one instance', async () => {
      const image = `cat-${Date.now()}.png`;
      const { code, stdout, stderr } = await runCli([...global, 'send', 'FIRE_AND_FORGET', 'calc', 'resize', JSON.stringify({ image })]);
      expect(code, stderr).to.equal(0);
      expect(stdout).to.match(/^FIRE_AND_FORGET queryId=\S+ to=calc action=resize state=PENDING/);
      await until(resizeSeen, () => resized.includes(image), 'the resize');
      expect(resized.filter((i) => i === image)).to.have.length(1);
    });

    it('BROADCAST: every instance processes it', async () => {
      const before = reloads.length;
      const { code, stderr } = await runCli([...global, 'send', 'broadcast', 'calc', 'reload', '{"version": 2}']);
      expect(code, stderr).to.equal(0);
      await until(reloadSeen, () => reloads.length - before >= 2, 'the broadcast reaching both instances');
      expect(reloads.slice(before).sort()).to.deep.equal(['calc-1', 'calc-2']);
    });

    it('ASYNC: prints the handle PENDING, then DONE with the result', async () => {
      const { code, stdout, stderr } = await runCli([...global, 'send', 'async', 'calc', 'report', '{"format": "csv"}', '--json']);
      expect(code, stderr).to.equal(0);
      const [pending, done] = stdout.trim().split('\n').map((line) => JSON.parse(line) as { state: string; type: string; result: unknown; queryId: string });
      expect(pending).to.include({ state: 'PENDING', type: QueryType.ASYNC });
      expect(done).to.include({ state: 'DONE', queryId: pending.queryId });
      expect(done.result).to.deep.equal({ format: 'csv', rows: 3, by: 'calc' });
    });

    it('SYNC: prints the result; an unknown action is NoHandlerError (exit 5)', async () => {
      const [ok, unknown] = await Promise.all([
        runCli([...global, 'send', 'SYNC', 'calc', 'report', '{"format": "pdf"}']),
        runCli([...global, 'send', 'SYNC', 'calc', 'no-such-action']),
      ]);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(ok.stdout).to.match(/^SYNC queryId=\S+ to=calc action=report state=DONE result=\{"format":"pdf","rows":3,"by":"calc"\}/);
      expect(unknown.code, unknown.stderr).to.equal(5);
      expect(unknown.stderr).to.match(/^intracom: NoHandlerError: /);
    });
  });

  describe('status', () => {
    it('shows live instances, queues and held mutexes, as text and as JSON', async () => {
      const [text, json] = await Promise.all([runCli([...global, 'status']), runCli([...global, 'status', '--json'])]);
      expect(json.code, json.stderr).to.equal(0);
      const report = JSON.parse(json.stdout) as StatusReport;
      expect(report.namespace).to.equal(namespace);
      const calc = report.services.find((s) => s.service === 'calc');
      expect(calc?.instances.map((i) => i.instanceId)).to.include.members(['calc-1', 'calc-2', 'calc-publisher']);
      expect(calc?.queues?.service).to.equal('calc');
      expect(calc?.queues?.broadcast.instances.map((i) => i.instanceId).sort()).to.deep.equal(['calc-1', 'calc-2']);
      expect(calc?.queues?.fireAndForget).to.have.keys(['depth', 'pending', 'oldestAgeMs']);
      expect(report.services.map((s) => s.service)).not.to.include('intracom-cli');
      expect(report.rpcTargets).to.deep.include({ target: 'service.calc.rpc', instances: 2 });
      expect(report.mutexes).to.have.length(1);
      expect(report.mutexes[0]).to.include({ mutexId: 'nightly-report', taken: true, takenBy: 'reporter-1' });

      expect(text.code, text.stderr).to.equal(0);
      expect(text.stdout).to.include(`namespace: ${namespace}`);
      expect(text.stdout).to.match(/\n {2}calc\s+3\s+\d+\s+\d+/);
      expect(text.stdout).to.match(/nightly-report\s+by reporter-1/);
      expect(text.stdout).to.match(/service\.calc\.rpc\s+2 instances/);
    });
  });

  describe('dead-letters', () => {
    it('lists the dead letters of a service and replays them with progress', async () => {
      explodes = true;
      await calc1.fireAndForget('calc', 'explode', { n: 1 });
      // the dead-letter store has no event to await: poll it (bounded)
      let ids: string[] = [];
      for (let i = 0; i < 100 && ids.length === 0; i++) {
        ids = (await calc1.deadLetters('calc')).map((l) => l.id);
        if (ids.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(ids).to.have.length(1);

      const [list, listJson] = await Promise.all([runCli([...global, 'dead-letters', 'list', 'calc']), runCli([...global, 'dead-letters', 'list', 'calc', '--json'])]);
      expect(list.code, list.stderr).to.equal(0);
      expect(list.stdout).to.match(/^1 dead letter for calc/);
      expect(list.stdout).to.include(ids[0]).and.include('max-attempts').and.include('explode');
      expect((JSON.parse(listJson.stdout) as Array<{ id: string; reason: string }>).map((l) => [l.id, l.reason])).to.deep.equal([[ids[0], 'max-attempts']]);

      const missing = await runCli([...global, 'dead-letters', 'replay', 'calc', '0-1']);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.equal('intracom: ValidationError: no dead letter of calc has the id 0-1\n');

      explodes = false;
      const replay = await runCli([...global, 'dead-letters', 'replay', 'calc', ids[0]]);
      expect(replay.code, replay.stderr).to.equal(0);
      expect(replay.stderr).to.include('replaying 1/1');
      expect(replay.stdout).to.equal('replayed 1 dead letter of calc\n');
      const left = await calc1.deadLetters('calc');
      expect(left, JSON.stringify(left.map((l) => [l.reason, l.detail, l.stream, l.raw?.toString('hex')]))).to.have.length(0);
    });
  });

  describe('watch', () => {
    it('prints decoded events with their headers, and stops after --count', async () => {
      const run = startCli([...global, 'watch', 'module.calc.*', '--count', '2', '--json']);
      await run.stderrIncludes('watching');
      await publisher.publish('module.calc.events', { user: 'alice', type: 'USER_CONNECTED' });
      await publisher.publish('module.calc.events', { user: 'alice', type: 'USER_DISCONNECTED' });
      const { code, stdout, stderr } = await run.result;
      expect(code, stderr).to.equal(0);
      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { channel: string; kind: string; fields: Record<string, unknown> });
      expect(lines).to.have.length(2);
      expect(lines[0]).to.deep.include({ channel: 'module.calc.events', kind: 'event' });
      expect(lines[0].fields).to.deep.include({ name: 'module.calc.events', serviceName: 'calc', payload: { user: 'alice', type: 'USER_CONNECTED' } });
      expect(lines[0].fields.createdAt).to.match(/^\d{4}-\d\d-\d\dT/);
      expect((lines[1].fields.payload as { type: string }).type).to.equal('USER_DISCONNECTED');
    });

    it('shows RPC requests and replies with their envelope fields (text)', async () => {
      const run = startCli([...global, 'watch', '*', '--count', '2']);
      await run.stderrIncludes('watching');
      const caller = new RedisRPCClient({ service: 'web', instanceId: 'web-watched', redis: redis.url, namespace });
      await caller.connect();
      try {
        expect(await caller.callService('calc', 'add', 20, 22)).to.equal(42);
      } finally {
        await caller.close();
      }
      const { code, stdout, stderr } = await run.result;
      expect(code, stderr).to.equal(0);
      const [request, reply] = stdout.trim().split('\n');
      expect(request).to.match(/^\d\d:\d\d:\d\d\.\d{3} service\.calc\.rpc\.calc-[12] rpc-request queryId=\S+ from=web\/web-watched action=add query=\[20,22\] timeout_ms=\d+$/);
      expect(reply).to.match(/^\d\d:\d\d:\d\d\.\d{3} intracom\.rpc\.reply\.web\.web-watched\.from\.calc rpc-reply queryId=\S+ result=42$/);
    });
  });

  describe('bad arguments and an unreachable Redis', () => {
    it('exits 2 with a clear message for bad arguments', async () => {
      const runs = await Promise.all([
        runCli([...global, 'call', 'calc', 'add', 'not-json']),
        runCli([...global, 'call', 'calc', 'add', '{"a": 1}']),
        runCli([...global, 'send', 'MAYBE', 'calc', 'report']),
        runCli([...global, '--timeout', '0', 'status']),
        runCli(['catalogue', '--format', 'yaml']),
        runCli(['frobnicate']),
        runCli([]),
        runCli(['--namespace', 'bad namespace!', '--redis', redis.url, 'status']),
      ]);
      for (const run of runs) expect(run.code, run.stderr).to.equal(2);
      expect(runs[0].stderr).to.include('args must be JSON');
      expect(runs[1].stderr).to.include('args must be a JSON array');
      expect(runs[2].stderr).to.include('type must be one of FIRE_AND_FORGET, BROADCAST, ASYNC, SYNC');
      expect(runs[3].stderr).to.include('--timeout must be a positive integer');
      expect(runs[4].stderr).to.include('Allowed choices are text, markdown, json');
      expect(runs[5].stderr).to.include("unknown command 'frobnicate'");
      expect(runs[6].stderr).to.include('Usage: intracom');
      expect(runs[7].stderr).to.include('namespace');
      // every error in the documented form (docs/cli.md): `intracom: ClassName: message`
      for (const run of [...runs.slice(0, 6), runs[7]]) expect(run.stderr, run.stderr).to.match(/^intracom: ValidationError: /);
    });

    it('exits 3 naming the URL when Redis cannot be reached', async () => {
      const { code, stderr } = await runCli(['--redis', 'redis://127.0.0.1:1', 'status']);
      expect(code).to.equal(3);
      expect(stderr).to.match(/^intracom: ConnectionError: cannot reach Redis at redis:\/\/127\.0\.0\.1:1: /);
    });
  });
});
