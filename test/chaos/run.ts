/**
 * `npm run chaos`: N services x M instance processes under steady load
 * (events, RPC, FIRE_AND_FORGET, BROADCAST, the mutex) while a schedule of
 * faults runs against a private redis-server, and a fuzzer sends hostile
 * frames to every channel and stream the library reads. Prints a table on
 * stderr and JSON lines on stdout; exits 1 when an invariant does not hold.
 *
 *   npm run chaos                  the full schedule (about 2-3 minutes)
 *   npm run chaos -- --short       the short form `npm test` runs (under a minute)
 *   npm run chaos -- --seed 7      replay a fuzz sequence
 *
 * Never against a shared Redis: both servers (the one under fault, and the
 * ledger that counts what was processed) are private and stopped at the end.
 */
import { performance } from 'node:perf_hooks';
import Redis from 'ioredis';
import { serviceRpc, Names } from '../../vars/names';
import { spawnPeer, type Peer } from '../support/processes';
import { startRedis, type TestRedis } from '../support/redis-server';
import { MUTATIONS, mutate, random } from './fuzz';

interface Options {
  short: boolean;
  /** A directory for each instance's heap snapshot after warm-up and at the end (`--heap-snapshots DIR`). */
  heapSnapshots: string | undefined;
  services: number;
  instances: number;
  seed: number;
}

function parseArgs(argv: string[]): Options {
  const short = argv.includes('--short');
  const value = (flag: string, fallback: number): number => {
    const index = argv.indexOf(flag);
    return index === -1 ? fallback : Number(argv[index + 1]);
  };
  const snapshots = argv.indexOf('--heap-snapshots');
  return { short, services: value('--services', short ? 2 : 3), instances: value('--instances', 2), seed: value('--seed', Date.now() % 100_000), heapSnapshots: snapshots === -1 ? undefined : argv[snapshots + 1] };
}

const RPC_TIMEOUT_MS = 2000;
/** Slack past a call's timeout within which it must settle (documented in docs/operations.md). */
const SETTLE_SLACK_MS = 1000;

interface InstanceReport {
  instanceId: string;
  eventsSent: Record<string, number>;
  eventsReceived: Record<string, number>;
  rpc: { calls: number; ok: number; withinBound: number; longestMs: number; errors: Record<string, number>; byPhase: Record<string, number> };
  ffSent: string[];
  bcSent: Array<[string, string]>;
  sendErrors: Record<string, number>;
  mutex: { taken: number; errors: Record<string, number> };
  memory: { heapUsed: number; rss: number };
  client: { malformed: number; shed: number };
}

interface Slot {
  service: string;
  instanceId: string;
  peer: Peer;
  /** Reports of earlier lives of this instance (before a SIGKILL), then the current one. */
  totals: InstanceReport[];
  last: InstanceReport | undefined;
  killedByUs: boolean;
  startMemory: number;
}

interface FaultResult {
  fault: string;
  ms: number;
  note: string;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const target = await startRedis({ private: true, args: ['--appendonly', 'yes', '--appendfsync', 'everysec', '--enable-debug-command', 'local'] });
  const ledgerServer = await startRedis({ private: true });
  const namespace = `chaos${options.seed}`;
  const names = new Names(namespace);
  const admin = new Redis(target.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  admin.on('error', () => undefined);
  const fuzzer = new Redis(target.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  fuzzer.on('error', () => undefined);
  const ledger = new Redis(ledgerServer.url);
  const services = Array.from({ length: options.services }, (_, i) => `svc${i}`);
  const slots: Slot[] = [];
  let crashes = 0;
  const crashNotes: string[] = [];

  const spawn = (slot: Omit<Slot, 'peer' | 'totals' | 'last' | 'killedByUs' | 'startMemory'> & Partial<Slot>): Slot => {
    const peer = spawnPeer('test/chaos/peers/instance.ts', {
      REDIS_URL: target.url,
      LEDGER_URL: ledgerServer.url,
      NAMESPACE: namespace,
      SERVICE: slot.service,
      INSTANCE_ID: slot.instanceId,
      SERVICES: services.join(','),
      RPC_TIMEOUT_MS: String(RPC_TIMEOUT_MS),
      SETTLE_SLACK_MS: String(SETTLE_SLACK_MS),
      TICK_MS: options.short ? '40' : '25',
      INTRACOM_LOG_LEVEL: process.env.INTRACOM_LOG_LEVEL ?? 'silent',
      // memory is read after a full collection, so that start and end compare what is live
      INTRACOM_PEER_NODE_FLAGS: '--expose-gc',
    });
    const full: Slot = { totals: [], last: undefined, startMemory: 0, ...slot, peer, killedByUs: false };
    peer.child.on('message', (message: { ev?: string } & InstanceReport) => {
      if (message.ev === 'report' || message.ev === 'final') {
        // sent ids arrive in pieces; counters are cumulative per life
        if (full.last !== undefined) {
          message.ffSent = [...full.last.ffSent, ...message.ffSent];
          message.bcSent = [...full.last.bcSent, ...message.bcSent];
        }
        full.last = message;
      }
    });
    peer.child.on('exit', (code, signal) => {
      if (full.killedByUs || code === 0) return;
      crashes += 1;
      crashNotes.push(`${slot.instanceId} exited with ${code ?? signal}`);
    });
    return full;
  };

  for (const service of services) for (let i = 0; i < options.instances; i++) slots.push(spawn({ service, instanceId: `${service}-${i}` }));
  await Promise.all(slots.map(async (slot) => {
    const ready = await slot.peer.next<{ ev: string; memory: number }>((m) => m.ev === 'ready', 60_000);
    slot.startMemory = ready.memory;
  }));
  const broadcastToPeers = (message: unknown): void => {
    for (const slot of slots) if (slot.peer.child.connected) slot.peer.send(message);
  };
  const setPhase = (phase: string): void => broadcastToPeers({ cmd: 'phase', phase });
  const redisMemoryStart = await usedMemory(admin);

  // ---- the fuzzer ----
  const next = random(options.seed);
  let fuzzing = false;
  const fuzzCounts: Record<string, number> = {};
  const fuzzTargets = (): Array<{ kind: 'channel' | 'stream'; name: string }> => [
    { kind: 'channel', name: names.channel('chaos.events') },
    ...slots.flatMap((slot) => [
      { kind: 'channel' as const, name: names.rpcInstance(serviceRpc(slot.service), slot.instanceId) },
      { kind: 'channel' as const, name: names.rpcReplies(slot.service, slot.instanceId, slot.service) },
    ]),
    ...services.flatMap((service) => [
      { kind: 'stream' as const, name: names.queryStream(service) },
      { kind: 'stream' as const, name: names.broadcastStream(service) },
    ]),
  ];
  // CHAOS_SKIP=record-definition,deep-nesting leaves mutations out (to tell one finding from another)
  const skipped = new Set((process.env.CHAOS_SKIP ?? '').split(',').filter(Boolean));
  const mutations = MUTATIONS.filter((m) => !skipped.has(m));
  const fuzzLoop = async (): Promise<void> => {
    const targets = fuzzTargets();
    while (fuzzing) {
      const pipeline = fuzzer.pipeline();
      for (let i = 0; i < 50; i++) {
        const kind = mutations[Math.floor(next() * mutations.length)];
        const to = targets[Math.floor(next() * targets.length)];
        const frame = mutate(kind, next);
        fuzzCounts[kind] = (fuzzCounts[kind] ?? 0) + 1;
        if (to.kind === 'channel') pipeline.publish(to.name, frame);
        else pipeline.xadd(to.name, '*', 'm', frame);
      }
      await pipeline.exec().catch(() => undefined);
      await sleep(20);
    }
  };

  // ---- the fault schedule ----
  const results: FaultResult[] = [];
  const gap = options.short ? 2500 : 6000;
  const fault = async (name: string, run: () => Promise<string>): Promise<void> => {
    setPhase(name);
    const at = performance.now();
    let note: string;
    try {
      note = await run();
    } catch (error) {
      note = `fault could not run: ${error instanceof Error ? error.message : String(error)}`;
    }
    results.push({ fault: name, ms: Math.round(performance.now() - at), note });
    log(`  ${name}: ${note}`);
    setPhase(`after ${name}`);
    await sleep(gap);
  };
  const victim = (): Slot => slots[Math.floor(next() * slots.length)];

  log(`chaos: ${options.services} services x ${options.instances} instances, seed ${options.seed}${options.short ? ', short form' : ''}`);
  setPhase('warm-up');
  broadcastToPeers({ cmd: 'load' });
  await sleep(options.short ? 2000 : 5000);
  // memory at the start is read under load, once every code path has run (compiled code and warm caches are not growth)
  await Promise.all(slots.map(async (slot) => {
    const reply = await slot.peer.ask<{ heapUsed: number }>({ cmd: 'memory' }, 'memory', 30_000).catch(() => undefined);
    if (reply !== undefined) slot.startMemory = reply.heapUsed;
  }));
  const snapshot = (when: string): Promise<unknown> =>
    options.heapSnapshots === undefined
      ? Promise.resolve()
      : Promise.all(slots.map((slot) => slot.peer.ask({ cmd: 'snapshot', file: `${options.heapSnapshots}/${slot.instanceId}-${when}.heapsnapshot` }, 'snapshot', 120_000).catch(() => undefined)));
  await snapshot('start');

  await fault('fuzz', async () => {
    fuzzing = true;
    const loop = fuzzLoop();
    await sleep(options.short ? 4000 : 15_000);
    fuzzing = false;
    await loop;
    return `${Object.values(fuzzCounts).reduce((a, b) => a + b, 0)} hostile frames`;
  });
  await fault('sigkill', async () => {
    const slot = victim();
    slot.killedByUs = true;
    if (slot.last !== undefined) slot.totals.push(slot.last);
    await slot.peer.kill();
    await sleep(1000);
    const restarted = spawn({ service: slot.service, instanceId: slot.instanceId });
    slots[slots.indexOf(slot)] = restarted;
    restarted.totals = slot.totals;
    restarted.startMemory = slot.startMemory;
    await restarted.peer.next((m: { ev?: string }) => m.ev === 'ready', 60_000);
    restarted.peer.send({ cmd: 'load' });
    return `SIGKILL ${slot.instanceId}, restarted with the same id`;
  });
  await fault('client-kill', async () => {
    const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    const pubsub = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub', 'SKIPME', 'yes');
    return `${Number(killed) + Number(pubsub)} connections killed`;
  });
  await fault('redis-restart', async () => {
    await (target.restart as () => Promise<void>)();
    return 'SIGTERM, restarted on the same port with AOF';
  });
  await fault('client-pause', async () => {
    await admin.call('CLIENT', 'PAUSE', options.short ? '1500' : '3000', 'ALL');
    await sleep(options.short ? 1500 : 3000);
    return `CLIENT PAUSE ${options.short ? 1500 : 3000} ms`;
  });
  if (!options.short) {
    await fault('debug-sleep', async () => {
      await admin.call('DEBUG', 'SLEEP', '2');
      return 'DEBUG SLEEP 2';
    });
    await fault('maxmemory', async () => {
      const used = await usedMemory(admin);
      await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      await admin.call('CONFIG', 'SET', 'maxmemory', String(used + 256 * 1024));
      await sleep(4000);
      await admin.call('CONFIG', 'SET', 'maxmemory', '0');
      return 'maxmemory used+256 KiB, noeviction, for 4 s';
    });
    await fault('output-buffer', async () => {
      await admin.call('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 64kb 16kb 1');
      const burst = fuzzer.pipeline();
      for (let i = 0; i < 200; i++) burst.publish(names.channel('chaos.events'), Buffer.alloc(16 * 1024, 0x41));
      await burst.exec();
      await sleep(1500);
      await admin.call('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
      return 'pubsub output-buffer limit 64 KiB, a burst of 3 MiB: subscribers cut';
    });
  }

  // ---- drain and count ----
  setPhase('drain');
  broadcastToPeers({ cmd: 'stop-load' });
  await Promise.all(slots.map((slot) => slot.peer.next((m: { ev?: string }) => m.ev === 'final', RPC_TIMEOUT_MS + SETTLE_SLACK_MS + 20_000).catch(() => undefined)));
  const reports = slots.flatMap((slot) => [...slot.totals, ...(slot.last ? [slot.last] : [])]);
  const ffSent = new Set(reports.flatMap((r) => r.ffSent));
  const bcSent = reports.flatMap((r) => r.bcSent);
  const instancesOf = (service: string) => slots.filter((s) => s.service === service).map((s) => s.instanceId);
  const drainDeadline = performance.now() + (options.short ? 20_000 : 45_000);
  let ffDone: Record<string, string> = {};
  let bcDone: Record<string, string> = {};
  for (;;) {
    ffDone = await ledger.hgetall('ff');
    bcDone = await ledger.hgetall('bc');
    const ffMissing = [...ffSent].filter((id) => ffDone[id] === undefined).length;
    const bcMissing = bcSent.reduce((n, [id, service]) => n + instancesOf(service).filter((i) => bcDone[`${id}|${i}`] === undefined).length, 0);
    if ((ffMissing === 0 && bcMissing === 0) || performance.now() > drainDeadline) break;
    await sleep(500);
  }
  const ffLost = [...ffSent].filter((id) => ffDone[id] === undefined);
  const ffDuplicates = Object.values(ffDone).reduce((n, count) => n + Number(count) - 1, 0);
  // queries sent while no fault ran (warm-up, fuzz: frames Redis delivers, nothing cut) must never run twice
  const sentIn = await ledger.hgetall('ffphase');
  const quietDuplicates = Object.entries(ffDone).reduce((n, [id, count]) => n + (['warm-up', 'fuzz'].includes(sentIn[id]) ? Number(count) - 1 : 0), 0);
  const bcExpected = bcSent.reduce((n, [, service]) => n + instancesOf(service).length, 0);
  const bcLost = bcSent.flatMap(([id, service]) => instancesOf(service).filter((i) => bcDone[`${id}|${i}`] === undefined).map((i) => `${id}|${i}`));
  const bcDuplicates = Object.values(bcDone).reduce((n, count) => n + Number(count) - 1, 0);
  const sum = (pick: (r: InstanceReport) => number): number => reports.reduce((n, r) => n + pick(r), 0);
  // a life ended by our SIGKILL took its calls in flight with it: only what it saw settle counts
  const killedLives = new Set(slots.flatMap((slot) => slot.totals));
  const rpcCalls = reports.reduce((n, r) => n + (killedLives.has(r) ? r.rpc.ok + Object.values(r.rpc.errors).reduce((a, b) => a + b, 0) : r.rpc.calls), 0);
  const rpcWithin = sum((r) => r.rpc.withinBound);
  const rpcErrors: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.rpc.errors)) rpcErrors[k] = (rpcErrors[k] ?? 0) + v;
  const sendErrors: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.sendErrors)) sendErrors[k] = (sendErrors[k] ?? 0) + v;
  // valid events delivered while fuzzed: every instance subscribes, so each event sent in the fuzz phase is due once per instance
  const fuzzSent = sum((r) => r.eventsSent.fuzz ?? 0);
  const fuzzReceived = sum((r) => r.eventsReceived.fuzz ?? 0);
  const fuzzDue = fuzzSent * slots.length;
  const redisMemoryEnd = await usedMemory(admin);
  const heapStart = slots.reduce((n, s) => n + s.startMemory, 0);
  const heapEnd = slots.reduce((n, s) => n + (s.last?.memory.heapUsed ?? 0), 0);
  const deadLetters = await Promise.all(services.map((s) => admin.xlen(names.deadLetters(s))));
  await snapshot('end');

  // ---- close ----
  await Promise.all(slots.map(async (slot) => {
    slot.killedByUs = true; // from here an exit is ours
    if (!slot.peer.child.connected) return;
    slot.peer.send({ cmd: 'close' });
    const exited = await Promise.race([slot.peer.exited(), sleep(5000).then(() => 'late')]);
    if (exited === 'late') {
      crashNotes.push(`${slot.instanceId} did not exit within 5 s of close`);
      crashes += 1;
      await slot.peer.kill();
    }
  }));
  admin.disconnect();
  fuzzer.disconnect();
  ledger.disconnect();
  await target.stop();
  await ledgerServer.stop();

  // ---- report ----
  const duplicateBound = 2 * 20 * slots.length * results.length; // 2 x batchSize per consumer and fault (docs/queries)
  const rows: Array<{ measure: string; value: string | number; expected: string; ok: boolean }> = [
    { measure: 'events sent', value: sum((r) => Object.values(r.eventsSent).reduce((a, b) => a + b, 0)), expected: '-', ok: true },
    { measure: 'events received (all subscribers)', value: sum((r) => Object.values(r.eventsReceived).reduce((a, b) => a + b, 0)), expected: 'at-most-once', ok: true },
    { measure: 'valid events delivered while fuzzed', value: `${fuzzReceived}/${fuzzDue}`, expected: '100 %', ok: fuzzReceived === fuzzDue },
    { measure: 'RPC calls', value: rpcCalls, expected: '-', ok: true },
    { measure: 'RPC answered', value: sum((r) => r.rpc.ok), expected: '-', ok: true },
    { measure: `RPC settled within ${RPC_TIMEOUT_MS} + ${SETTLE_SLACK_MS} ms`, value: `${rpcWithin}/${rpcCalls}`, expected: '100 %', ok: rpcWithin === rpcCalls },
    { measure: 'RPC longest settle', value: `${Math.round(Math.max(0, ...reports.map((r) => r.rpc.longestMs)))} ms`, expected: `<= ${RPC_TIMEOUT_MS + SETTLE_SLACK_MS} ms`, ok: true },
    { measure: 'RPC errors by class', value: JSON.stringify(rpcErrors), expected: 'typed', ok: true },
    { measure: 'FIRE_AND_FORGET stored', value: ffSent.size, expected: '-', ok: true },
    { measure: 'FIRE_AND_FORGET processed', value: Object.keys(ffDone).length, expected: '-', ok: true },
    { measure: 'FIRE_AND_FORGET lost', value: ffLost.length, expected: '0', ok: ffLost.length === 0 },
    { measure: 'FIRE_AND_FORGET duplicates', value: ffDuplicates, expected: `<= ${duplicateBound}`, ok: ffDuplicates <= duplicateBound },
    { measure: 'duplicates of queries no fault touched', value: quietDuplicates, expected: '0', ok: quietDuplicates === 0 },
    { measure: 'BROADCAST deliveries due', value: bcExpected, expected: '-', ok: true },
    { measure: 'BROADCAST lost', value: bcLost.length, expected: '0', ok: bcLost.length === 0 },
    { measure: 'BROADCAST duplicates', value: bcDuplicates, expected: `<= ${duplicateBound}`, ok: bcDuplicates <= duplicateBound },
    { measure: 'send errors by class', value: JSON.stringify(sendErrors), expected: 'typed', ok: true },
    { measure: 'mutex sections run', value: sum((r) => r.mutex.taken), expected: '-', ok: true },
    { measure: 'malformed frames skipped', value: sum((r) => r.client.malformed), expected: '-', ok: true },
    { measure: 'dead letters kept', value: deadLetters.reduce((a, b) => a + b, 0), expected: 'capped', ok: true },
    { measure: 'process crashes', value: crashes, expected: '0', ok: crashes === 0 },
    { measure: 'heap of instances (after warm-up, after GC), start -> end', value: `${mb(heapStart)} -> ${mb(heapEnd)} MB`, expected: '-', ok: true },
    { measure: 'Redis used_memory, start -> end', value: `${mb(redisMemoryStart)} -> ${mb(redisMemoryEnd)} MB`, expected: '-', ok: true },
  ];
  const seconds = Math.round((performance.now() - started) / 1000);
  log('');
  log(`chaos run: ${seconds} s, seed ${options.seed}, ${slots.length} instances, faults: ${results.map((r) => r.fault).join(', ')}`);
  const width = Math.max(...rows.map((r) => r.measure.length));
  const valueWidth = Math.max(...rows.map((r) => String(r.value).length));
  for (const row of rows) log(`  ${row.ok ? ' ' : '!'} ${row.measure.padEnd(width)}  ${String(row.value).padEnd(valueWidth)}  ${row.expected}`);
  // what each fault cost: RPC outcomes while it ran and in the recovery gap after it
  const byPhase: Record<string, number> = {};
  for (const r of reports) for (const [k, v] of Object.entries(r.rpc.byPhase ?? {})) byPhase[k] = (byPhase[k] ?? 0) + v;
  const costs = results.map(({ fault: name }) => {
    const outcomes: Record<string, number> = {};
    for (const [key, count] of Object.entries(byPhase)) {
      const space = key.lastIndexOf(' ');
      const phase = key.slice(0, space);
      if (phase === name || phase === `after ${name}`) outcomes[key.slice(space + 1)] = (outcomes[key.slice(space + 1)] ?? 0) + count;
    }
    const ok = outcomes.ok ?? 0;
    const failed = Object.entries(outcomes).filter(([k]) => k !== 'ok');
    return { fault: name, ok, failed: Object.fromEntries(failed) };
  });
  log('');
  log('  what each fault cost (RPC calls started while it ran or in the recovery gap after it):');
  for (const cost of costs) log(`    ${cost.fault.padEnd(14)} ${String(cost.ok).padStart(6)} answered  ${Object.entries(cost.failed).map(([k, v]) => `${v} ${k}`).join(', ') || 'no failure'}`);
  for (const note of crashNotes) log(`  crash: ${note}`);
  if (ffLost.length > 0) log(`  lost FIRE_AND_FORGET ids (first 5): ${ffLost.slice(0, 5).join(' ')}`);
  if (bcLost.length > 0) log(`  lost BROADCAST deliveries (first 5): ${bcLost.slice(0, 5).join(' ')}`);
  const emit = (record: object): void => void process.stdout.write(`${JSON.stringify(record)}\n`);
  for (const result of results) emit({ type: 'fault', ...result, rpc: costs.find((c) => c.fault === result.fault) });
  for (const row of rows) emit({ type: 'measure', ...row });
  emit({
    type: 'summary',
    seconds,
    seed: options.seed,
    short: options.short,
    instances: slots.length,
    ok: rows.every((r) => r.ok),
    ffSent: ffSent.size,
    ffLost: ffLost.length,
    ffDuplicates,
    quietDuplicates,
    bcExpected,
    bcLost: bcLost.length,
    bcDuplicates,
    duplicateBound,
    rpcCalls,
    rpcWithin,
    rpcLongestMs: Math.round(Math.max(0, ...reports.map((r) => r.rpc.longestMs))),
    fuzzSent,
    fuzzDue,
    fuzzReceived,
    fuzzFrames: fuzzCounts,
    crashes,
    heapStart,
    heapEnd,
    redisMemoryStart,
    redisMemoryEnd,
  });
  return rows.every((r) => r.ok) ? 0 : 1;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('chaos run failed:', error);
    process.exit(2);
  },
);

export type { TestRedis };
