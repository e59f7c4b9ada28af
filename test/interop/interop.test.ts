/**
 * The Python reference client (test/interop/intracom.py, written from
 * docs/protocol.md with Debian's python3-redis and python3-msgpack) against
 * the real library on a real Redis, in both directions wherever a direction
 * exists.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RedisClient } from '../../src/client/RedisClient';
import type { AuthOptions } from '../../src/envelope/AuthOptions';
import { MsgpackCodec, encodeFrame } from '../../src/envelope/codec';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { PermissionError } from '../../src/errors/PermissionError';
import { defineVar } from '../../vars/define';
import { until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

/** The first interpreter that imports redis and msgpack: Debian's first (a pyenv shim may not see its packages). */
function findPython(): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3', 'python']) {
    const probe = spawnSync(candidate, ['-c', 'import redis, msgpack'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

type Answer = Record<string, any>;

/** One Python agent process: a JSON command per line in, a JSON answer per line out. */
class PythonAgent {
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (answer: Answer) => void>();
  private next = 0;
  readonly ready: Promise<void>;

  constructor(python: string, url: string, namespace: string, readonly service: string) {
    this.child = spawn(python, [join(__dirname, 'agent.py'), url, namespace, service], { stdio: ['pipe', 'pipe', 'inherit'] });
    let started: () => void = () => undefined;
    this.ready = new Promise((resolve) => (started = resolve));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer;
      if (answer.ready) return started();
      this.waiting.get(answer.id as number)?.(answer);
      this.waiting.delete(answer.id as number);
    });
  }

  async ask(command: Answer): Promise<Answer> {
    const id = this.next++;
    const answer = new Promise<Answer>((resolve) => this.waiting.set(id, resolve));
    this.child.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    const result = await answer;
    if (result.failure !== undefined) throw new Error(`python: ${result.failure}`);
    return result;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }
}

/** JSON's stand-in for integers beyond 2^53 (see agent.py). */
const big = (value: bigint): { $int: string } => ({ $int: value.toString() });

describe('interoperability with the Python reference client (docs/protocol.md)', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let python: string;
  let run = 0;
  let namespace: string;
  let agent: PythonAgent;
  const made: Array<{ close(): Promise<void> }> = [];

  before(async function () {
    const found = findPython();
    if (found === undefined) throw new Error('no Python interpreter imports redis and msgpack: install python3-redis and python3-msgpack (apt-get) or pip install redis msgpack');
    python = found;
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  beforeEach(async () => {
    namespace = `${redis.namespace}py${run++}`;
    agent = new PythonAgent(python, redis.url, namespace, 'py');
    await agent.ready;
  });
  afterEach(async () => {
    await agent.stop();
    await Promise.all(made.splice(0).map((thing) => thing.close()));
  });

  function rpc(service: string): RedisRPCClient {
    const client = new RedisRPCClient({ service, redis: redis.url, namespace, queues: { blockMs: 100 } });
    made.push(client);
    return client;
  }

  it('events, Python to intracom: one event, a many-message frame of the integers 0-255, and int64', async () => {
    const client = new RedisClient({ service: 'js', redis: redis.url, namespace });
    made.push(client);
    await client.connect();
    const received: unknown[] = [];
    let done: () => void = () => undefined;
    const all = new Promise<void>((resolve) => (done = resolve));
    const int64 = [2n ** 40n, -(2n ** 40n), 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n];
    await client.subscribe('module.interop.events', (payload) => {
      received.push(payload);
      if (received.length === 1 + 256 + int64.length) done();
    });
    await agent.ask({ cmd: 'publish', topic: 'module.interop.events', payloads: [{ n: 64 }] });
    await agent.ask({ cmd: 'publish', topic: 'module.interop.events', payloads: Array.from({ length: 256 }, (_, i) => i) });
    await agent.ask({ cmd: 'publish', topic: 'module.interop.events', payloads: int64.map(big) });
    await all;
    expect(received[0]).to.deep.equal({ n: 64 });
    expect(received.slice(1, 257)).to.deep.equal(Array.from({ length: 256 }, (_, i) => i));
    expect(received.slice(257)).to.deep.equal(int64);
    expect(client.stats().malformed).to.equal(0);
  });

  it('events, intracom to Python: a many-message frame of the integers 0-255, bigints and a large number', async () => {
    const client = new RedisClient({ service: 'js', redis: redis.url, namespace });
    made.push(client);
    await client.connect();
    await agent.ask({ cmd: 'subscribe', topic: 'module.interop.events' });
    const sent: unknown[] = [...Array.from({ length: 256 }, (_, i) => i), 2n ** 63n - 1n, -5n, 2 ** 40, { nested: [64, 'x'] }];
    await Promise.all(sent.map((payload) => client.publish('module.interop.events', payload))); // one tick: frames of many messages
    const { payloads } = await agent.ask({ cmd: 'collected', topic: 'module.interop.events', count: sent.length });
    expect(payloads).to.deep.equal([...Array.from({ length: 256 }, (_, i) => i), big(2n ** 63n - 1n), -5, 2 ** 40, { nested: [64, 'x'] }]);
  });

  it('RPC, Python calls intracom: result, remote error, no handler, timeout and cancel', async () => {
    const server = rpc('calc');
    const aborted: string[] = [];
    let cancelled: () => void = () => undefined;
    const cancel = new Promise<void>((resolve) => (cancelled = resolve));
    server.expose('add', ([a, b]: number[]) => a + b);
    server.expose('fail', () => {
      throw Object.assign(new RangeError('too far'), { code: 'E_FAR' });
    });
    server.expose(
      'wait',
      (_args, context) =>
        new Promise((_resolve, reject) =>
          context.signal.addEventListener('abort', () => {
            aborted.push((context.signal.reason as Error).name);
            if ((context.signal.reason as Error).name === 'CancelledError') cancelled();
            reject(context.signal.reason);
          }),
        ),
    );
    await server.connect();
    expect(await agent.ask({ cmd: 'call', service: 'calc', fn: 'add', args: [1, 2] })).to.include({ result: 3 });
    const failed = await agent.ask({ cmd: 'call', service: 'calc', fn: 'fail', args: [] });
    expect(failed.error).to.equal('RemoteError');
    expect(failed.reply.error).to.deep.include({ ok: false, errorName: 'RangeError', message: 'too far', code: 'E_FAR' });
    const missing = await agent.ask({ cmd: 'call', service: 'calc', fn: 'nope', args: [] });
    expect(missing.error).to.equal('NoHandlerError');
    expect(missing.reply.error.data.available).to.include.members(['add', 'fail', 'wait']);
    expect((await agent.ask({ cmd: 'call', service: 'calc', fn: 'wait', args: [], timeout_ms: 300 })).error).to.equal('TimeoutError');
    expect((await agent.ask({ cmd: 'call', service: 'calc', fn: 'wait', args: [], timeout_ms: 5000, cancel_after_ms: 100 })).error).to.equal('CancelledError');
    await cancel; // the Python caller's cancel fired the handler's signal
    expect(aborted).to.deep.equal(['TimeoutError', 'CancelledError']);
    expect((await agent.ask({ cmd: 'call', service: 'nobody', fn: 'add', args: [] })).error).to.equal('NoServiceError');
  });

  it('RPC, a Python responder that intracom callers find and call: result, remote error, no handler, timeout, SYNC and ASYNC', async () => {
    const caller = rpc('web');
    await caller.connect();
    const { serving } = await agent.ask({ cmd: 'serve' });
    expect(await caller.callService('py', 'add', 2, 3)).to.equal(5);
    expect(await caller.callService('py', 'echo', { n: 64, big: 2n ** 62n, list: [64, 71] })).to.deep.equal({ n: 64, big: 2n ** 62n, list: [64, 71] });
    const remote = await caller.callService('py', 'fail').catch((error: unknown) => error);
    expect(remote).to.include({ name: 'RemoteError', remoteName: 'ValueError', remoteMessage: 'python says no', remoteCode: 'E_PY', instanceId: serving });
    expect(await caller.callService('py', 'nope').catch((error: Error) => error.name)).to.equal('NoHandlerError');
    expect(await caller.with({ timeoutMs: 200 }).callService('py', 'slow', 600).catch((error: Error) => error.name)).to.equal('TimeoutError');
    expect(await caller.sendSync('py', 'measure', { image: 'cat.png' })).to.deep.equal({ size: 7 });
    const handle = caller.sendAsync('py', 7);
    await handle.promise;
    expect(handle).to.include({ state: 'DONE', result: 'seven' });
    expect(await caller.sendSync('py', 'unknown').catch((error: Error) => error.name)).to.equal('NoHandlerError');
    await agent.ask({ cmd: 'stop-serving' });
    // the service registry: a Python announcement (its numbers written as uint64) reads as intracom's own
    await agent.ask({ cmd: 'announce' });
    const [instance] = await caller.client.instances('py');
    expect(instance).to.include({ instanceId: serving, service: 'py', pid: instance.pid });
    expect(typeof instance.startedAt).to.equal('number');
    expect(instance.startedAt).to.be.closeTo(Date.now(), 60_000);
  });

  it('RPC with named callers, both ways: the sender known from its own channel, other callers refused (PermissionError)', async () => {
    const web = rpc('web');
    const other = rpc('other');
    await Promise.all([web.connect(), other.connect()]);
    await agent.ask({ cmd: 'serve', callers: ['web'] });
    expect(await web.callService('py', 'add', 1, 2)).to.equal(3);
    expect(await other.callService('py', 'add', 1, 2).catch((error: unknown) => error)).to.be.instanceOf(PermissionError);
    await agent.ask({ cmd: 'stop-serving' });
    const open = new RedisRPCClient({ service: 'forpy', redis: redis.url, namespace, callers: ['py'] });
    const closed = new RedisRPCClient({ service: 'notforpy', redis: redis.url, namespace, callers: ['web'] });
    made.push(open, closed);
    await open.expose('who', (_args: [], context) => context.callerService);
    await closed.expose('who', (_args: [], context) => context.callerService);
    await Promise.all([open.connect(), closed.connect()]);
    expect((await agent.ask({ cmd: 'call', service: 'forpy', fn: 'who', args: [] })).result).to.equal('py');
    expect((await agent.ask({ cmd: 'call', service: 'notforpy', fn: 'who', args: [] })).error).to.equal('PermissionError');
  });

  it('SYNC and ASYNC, Python to intracom: result, remote error and no handler', async () => {
    const server = rpc('worker');
    server.handle('measure', (query: { image: string }) => ({ size: query.image.length }));
    server.handle(7, () => {
      throw new Error('not today');
    });
    await server.connect();
    expect(await agent.ask({ cmd: 'query', type: 'SYNC', service: 'worker', action: 'measure', query: { image: 'dog' } })).to.include.keys('result');
    expect((await agent.ask({ cmd: 'query', type: 'ASYNC', service: 'worker', action: 'measure', query: { image: 'dog' } })).result).to.deep.equal({ size: 3 });
    const failed = await agent.ask({ cmd: 'query', type: 'SYNC', service: 'worker', action: 7, query: null });
    expect(failed.error).to.equal('RemoteError');
    expect(failed.reply.error.message).to.equal('not today');
    expect((await agent.ask({ cmd: 'query', type: 'SYNC', service: 'worker', action: 'other', query: null })).error).to.equal('NoHandlerError');
  });

  it('FIRE_AND_FORGET and BROADCAST, produced by Python and consumed by intracom, and the other way', async () => {
    const worker = rpc('jobs');
    const handled: unknown[] = [];
    let arrived: () => void = () => undefined;
    const both = new Promise<void>((resolve) => (arrived = resolve));
    worker.handle('job', (query, context) => {
      handled.push({ query, type: context.type, attempts: context.processAttempts, from: context.serviceNameSource });
      if (handled.length === 2) arrived();
    });
    await worker.connect();
    await agent.ask({ cmd: 'produce', type: 'FIRE_AND_FORGET', service: 'jobs', action: 'job', query: { n: 1, big: big(2n ** 60n) } });
    await agent.ask({ cmd: 'produce', type: 'BROADCAST', service: 'jobs', action: 'job', query: { n: 2 } });
    await both;
    expect(handled).to.deep.include({ query: { n: 1, big: 2n ** 60n }, type: 'FIRE_AND_FORGET', attempts: 1, from: 'py' });
    expect(handled).to.deep.include({ query: { n: 2 }, type: 'BROADCAST', attempts: 1, from: 'py' });

    await agent.ask({ cmd: 'join-queues' });
    await worker.fireAndForget('py', 'job', { n: 3 });
    await worker.broadcast('py', 'job', { n: 4 });
    const [fire] = (await agent.ask({ cmd: 'consume', broadcast: false, count: 1 })).queries;
    const [broadcast] = (await agent.ask({ cmd: 'consume', broadcast: true, count: 1 })).queries;
    expect(fire).to.deep.include({ type: 'FIRE_AND_FORGET', action: 'job', query: { n: 3 }, serviceNameSource: 'jobs', serviceNameDest: 'py', state: 'PENDING' });
    expect(broadcast).to.deep.include({ type: 'BROADCAST', query: { n: 4 } });
  });

  it('variables and their change events, both ways, including a msgpack variable holding 64', async () => {
    const Count = defineVar({ name: 'InteropCount', type: 'integer', owner: 'interop', description: 'a count both languages write' });
    const Settings = defineVar({ name: 'InteropSettings', type: 'msgpack', owner: 'interop', description: 'msgpack both languages write' });
    const client = new RedisClient({ service: 'js', redis: redis.url, namespace });
    made.push(client);
    await client.connect();
    let changed: (change: unknown) => void = () => undefined;
    const change = new Promise((resolve) => (changed = resolve));
    await client.watch(Count, (c) => changed(c));
    await agent.ask({ cmd: 'set-variable', owner: 'interop', name: 'InteropCount', stored: '41', value: 41 });
    expect(await change).to.deep.include({ value: 41, deleted: false, changedBy: 'py' });
    expect(await client.get(Count)).to.equal(41);
    await agent.ask({ cmd: 'set-variable', owner: 'interop', name: 'InteropSettings', storedHex: '40', value: 64 }); // msgpack of 64: one byte, 0x40
    expect(await client.get(Settings)).to.equal(64);

    await agent.ask({ cmd: 'subscribe', topic: 'intracom.var.{interop}.InteropCount' });
    await client.set(Count, 42);
    expect((await agent.ask({ cmd: 'collected', topic: 'intracom.var.{interop}.InteropCount', count: 1 })).payloads).to.deep.equal([{ key: null, value: 42, deleted: false }]);
    expect(Buffer.from((await agent.ask({ cmd: 'get-variable', owner: 'interop', name: 'InteropCount' })).stored, 'hex').toString()).to.equal('42');
    await client.set(Settings, { list: [64, 65], when: 'now' });
    const stored = (await agent.ask({ cmd: 'get-variable', owner: 'interop', name: 'InteropSettings' })).stored as string;
    expect(stored.startsWith('de0002') || stored.startsWith('82')).to.equal(true); // a plain msgpack map
  });

  it('the mutex with fencing: Python and intracom exclude each other and share one increasing fence', async () => {
    const mutex = new RedisMutex({ redis: redis.url, namespace, nodeId: 'js-node' });
    made.push(mutex);
    const first = (await agent.ask({ cmd: 'acquire', mutexId: 'interop', nodeId: 'py-node', timeoutMs: 5000 })).held;
    expect(first.fence).to.be.a('number');
    expect(await mutex.P('interop', 'js-node', 1000)).to.equal(false);
    const record = await mutex.inspect('interop');
    expect(record).to.include({ taken: true, takenBy: 'py-node', timeout: 5000, fence: first.fence });
    expect((await agent.ask({ cmd: 'release', held: first })).released).to.equal(1);
    const lock = await mutex.acquire('interop', { timeoutMs: 5000 });
    expect(lock.fence).to.equal(first.fence + 1);
    expect((await agent.ask({ cmd: 'acquire', mutexId: 'interop', nodeId: 'py-node', timeoutMs: 5000 })).held).to.equal(null);
    await lock.release();
    const third = (await agent.ask({ cmd: 'acquire', mutexId: 'interop', nodeId: 'py-node', timeoutMs: 5000 })).held;
    expect(third.fence).to.equal(first.fence + 2);
  });

  describe('sealed frames (docs/protocol.md "Sealed frames"): signed and encrypted both ways', () => {
    const py = generateKeyPairSync('ed25519');
    const js = generateKeyPairSync('ed25519');
    const pem = (key: KeyObject, type: 'pkcs8' | 'spki') => key.export({ type, format: 'pem' }) as string;
    const encryptionKey = Buffer.alloc(32, 9);
    const publicKeys = { py: { p1: py.publicKey }, js: { j1: js.publicKey }, web: { j1: js.publicKey } };
    const jsAuth = (encrypt: boolean): AuthOptions => ({ keyId: 'j1', privateKey: js.privateKey, publicKeys, ...(encrypt ? { encryption: { keyId: 'x1', keys: { x1: encryptionKey } } } : {}) });

    async function pythonSeals(encrypt: boolean): Promise<void> {
      await agent.ask({
        cmd: 'auth',
        keyId: 'p1',
        privatePem: pem(py.privateKey, 'pkcs8'),
        publicKeys: { js: { j1: pem(js.publicKey, 'spki') }, web: { j1: pem(js.publicKey, 'spki') } },
        encryption: encrypt ? { keyId: 'x1', keys: { x1: encryptionKey.toString('base64') } } : null,
      });
    }

    for (const encrypt of [false, true]) {
      it(`events both ways${encrypt ? ', encrypted' : ''}: each side verifies the other's signature`, async () => {
        await pythonSeals(encrypt);
        const client = new RedisClient({ service: 'js', redis: redis.url, namespace, auth: jsAuth(encrypt) });
        made.push(client);
        await client.connect();
        const senders: unknown[] = [];
        let got: () => void = () => undefined;
        const arrived = new Promise<void>((resolve) => (got = resolve));
        await client.subscribe('module.interop.events', (payload, event) => {
          senders.push({ payload, sender: event.sender });
          got();
        });
        await agent.ask({ cmd: 'publish', topic: 'module.interop.events', payloads: [{ n: 64 }] });
        await arrived;
        expect(senders).to.deep.equal([{ payload: { n: 64 }, sender: { service: 'py', verified: true, keyId: 'p1' } }]);
        expect(client.stats().authRefused).to.equal(0);

        await agent.ask({ cmd: 'subscribe', topic: 'module.interop.events' });
        await client.publish('module.interop.events', { from: 'js', big: 2n ** 62n });
        const collected = await agent.ask({ cmd: 'collected', topic: 'module.interop.events', count: 1 });
        expect(collected.payloads).to.deep.equal([{ from: 'js', big: big(2n ** 62n) }]);
        expect(collected.senders).to.deep.equal([{ service: 'js', verified: true, keyId: 'j1' }]);
        expect((await agent.ask({ cmd: 'refused' })).refused).to.deep.equal([]);
      });
    }

    it('RPC both ways, signed and encrypted: Python verifies the request and intracom the reply, and the other way', async () => {
      await pythonSeals(true);
      const server = new RedisRPCClient({ service: 'calc', redis: redis.url, namespace, auth: { ...jsAuth(true), keyId: 'c1', publicKeys: { ...publicKeys, calc: { c1: js.publicKey } } } });
      made.push(server);
      let seen: unknown;
      await server.expose('add', ([a, b]: number[], context) => {
        seen = context.sender;
        return a + b;
      });
      await server.connect();
      await agent.ask({ cmd: 'auth', keyId: 'p1', privatePem: pem(py.privateKey, 'pkcs8'), publicKeys: { calc: { c1: pem(js.publicKey, 'spki') }, web: { j1: pem(js.publicKey, 'spki') } }, encryption: { keyId: 'x1', keys: { x1: encryptionKey.toString('base64') } } });
      expect(await agent.ask({ cmd: 'call', service: 'calc', fn: 'add', args: [1, 2] })).to.include({ result: 3 });
      expect(seen).to.deep.equal({ service: 'py', verified: true, keyId: 'p1' });
      expect((await agent.ask({ cmd: 'last-sender' })).sender).to.deep.equal({ service: 'calc', verified: true, keyId: 'c1' });

      const caller = new RedisRPCClient({ service: 'web', redis: redis.url, namespace, auth: jsAuth(true) });
      made.push(caller);
      await caller.connect();
      await agent.ask({ cmd: 'serve' });
      expect(await caller.callService('py', 'add', 2, 3)).to.equal(5);
      expect(await caller.callService('py', 'whoami')).to.deep.equal({ service: 'web', verified: true, keyId: 'j1' });
      expect(caller.client.stats().authRefused).to.equal(0);
      await agent.ask({ cmd: 'stop-serving' });
    });

    it('FIRE_AND_FORGET and BROADCAST produced sealed by Python, and the other way', async () => {
      await pythonSeals(true);
      const worker = new RedisRPCClient({ service: 'jobs', redis: redis.url, namespace, queues: { blockMs: 100 }, auth: { ...jsAuth(true), keyId: 'k1', publicKeys: { ...publicKeys, jobs: { k1: js.publicKey } } } });
      made.push(worker);
      const handled: unknown[] = [];
      let arrived: () => void = () => undefined;
      const both = new Promise<void>((resolve) => (arrived = resolve));
      worker.handle('job', (query, context) => {
        handled.push({ query, type: context.type, sender: context.sender });
        if (handled.length === 2) arrived();
      });
      await worker.connect();
      await agent.ask({ cmd: 'produce', type: 'FIRE_AND_FORGET', service: 'jobs', action: 'job', query: { n: 1 } });
      await agent.ask({ cmd: 'produce', type: 'BROADCAST', service: 'jobs', action: 'job', query: { n: 2 } });
      await both;
      const sender = { service: 'py', verified: true, keyId: 'p1' };
      expect(handled).to.deep.include({ query: { n: 1 }, type: 'FIRE_AND_FORGET', sender });
      expect(handled).to.deep.include({ query: { n: 2 }, type: 'BROADCAST', sender });

      await agent.ask({ cmd: 'auth', keyId: 'p1', privatePem: pem(py.privateKey, 'pkcs8'), publicKeys: { jobs: { k1: pem(js.publicKey, 'spki') } }, encryption: { keyId: 'x1', keys: { x1: encryptionKey.toString('base64') } } });
      await agent.ask({ cmd: 'join-queues' });
      await worker.fireAndForget('py', 'job', { n: 3 });
      const [fire] = (await agent.ask({ cmd: 'consume', broadcast: false, count: 1 })).queries;
      expect(fire).to.deep.include({ type: 'FIRE_AND_FORGET', query: { n: 3 }, serviceNameSource: 'jobs' });
      expect((await agent.ask({ cmd: 'last-sender' })).sender).to.deep.equal({ service: 'jobs', verified: true, keyId: 'k1' });
    });

    it('intracom refuses what Python forges: another service\'s name, altered bytes, a replay; Python refuses intracom\'s altered frames', async () => {
      await pythonSeals(false);
      const client = new RedisClient({ service: 'js', redis: redis.url, namespace, auth: jsAuth(false) });
      made.push(client);
      await client.connect();
      const received: unknown[] = [];
      await client.subscribe('module.interop.events', (payload) => {
        received.push(payload);
      });
      const channel = `${namespace}:module.interop.events`;
      const claimJs = encodeFrame(new MsgpackCodec(), [{ headers: { name: 'module.interop.events', createdAt: '', serviceName: 'js' }, payload: 'forged' }]);
      const forged = (await agent.ask({ cmd: 'seal', innerHex: claimJs.toString('hex'), to: channel })).hex as string;
      await agent.ask({ cmd: 'publish-raw', topic: 'module.interop.events', hex: forged });
      const genuine = Buffer.from((await agent.ask({ cmd: 'seal', innerHex: encodeFrame(new MsgpackCodec(), [{ headers: { name: 'module.interop.events', createdAt: '', serviceName: 'py' }, payload: 'real' }]).toString('hex'), to: channel })).hex, 'hex');
      const altered = Buffer.from(genuine);
      altered[altered.length - 70] ^= 1;
      await agent.ask({ cmd: 'publish-raw', topic: 'module.interop.events', hex: altered.toString('hex') });
      await agent.ask({ cmd: 'publish-raw', topic: 'module.interop.events', hex: genuine.toString('hex') });
      await agent.ask({ cmd: 'publish-raw', topic: 'module.interop.events', hex: genuine.toString('hex') });
      await until(() => client.stats().authRefused === 3, 5000, 'three refusals');
      expect(received).to.deep.equal(['real']);
      expect(client.stats()).to.include({ authForged: 2, authReplayed: 1 });

      await agent.ask({ cmd: 'subscribe', topic: 'module.interop.events' });
      const sealer = client.route.sealer!;
      const mine = sealer.seal(encodeFrame(new MsgpackCodec(), [{ headers: { name: 'module.interop.events', createdAt: '', serviceName: 'js' }, payload: 'x' }]), channel);
      mine[mine.length - 1] ^= 1;
      const raw = new Redis(redis.url);
      await raw.publish(channel, mine);
      raw.disconnect();
      await client.publish('module.interop.events', 'after');
      expect((await agent.ask({ cmd: 'collected', topic: 'module.interop.events', count: 1 })).payloads).to.deep.equal(['after']);
      expect((await agent.ask({ cmd: 'refused' })).refused).to.deep.equal(['bad signature']);
    });
  });
});
