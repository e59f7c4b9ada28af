/**
 * Real multi-node Redis topologies for the tests, started from the
 * `redis-server` binary on loopback ports: a Redis Cluster of 3 masters and 3
 * replicas, and a Sentinel deployment of 1 master, 1 replica and 3 sentinels.
 *
 * Each topology is started once per process, on first use, and stopped when
 * the run ends (before setup.ts checks for leftovers), so that every suite parameterised over
 * it shares one start-up (a cluster takes a few seconds to form).
 *
 * A failover test may SIGKILL a node; it must `revive()` it before it ends so
 * that the next suite finds the topology whole again.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { atRunEnd } from './teardown';

/** One redis-server process of a topology. */
export interface TopologyNode {
  readonly port: number;
  /** True while the process runs. */
  readonly alive: boolean;
  /** SIGKILL: no shutdown, no goodbye to the cluster bus or the sentinels. */
  kill(): Promise<void>;
  /** Starts the process again on the same port and data directory. */
  revive(): Promise<void>;
}

export interface TestCluster {
  readonly kind: 'cluster';
  /** Seed URLs of every node (`redis://127.0.0.1:<port>`). */
  readonly seeds: string[];
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...` */
  readonly url: string;
  readonly nodes: TopologyNode[];
  /** A namespace unique to each call, for isolation between suites. */
  namespace(): string;
  /** The node that currently serves `key`'s slot as master. */
  masterOf(key: string): Promise<TopologyNode>;
  /** Resolves once every slot is served and every node agrees (`cluster_state:ok`), each killed node revived and attached as a replica. */
  heal(): Promise<void>;
  /**
   * Moves the slot of `key` to another master (`to`, or the next one) the way
   * `redis-cli --cluster reshard` does, while traffic may flow: IMPORTING and
   * MIGRATING, MIGRATE of every key of the slot in batches, then
   * `SETSLOT NODE` on the target, the source and the other masters. Resolves
   * with the source and the target. `sourceFirst` gives the slot up on the
   * source 300 ms before the target claims it: a client refreshing its slot map
   * in that window still reads the old owner everywhere.
   */
  migrateSlot(key: string, options?: { to?: TopologyNode; sourceFirst?: boolean }): Promise<{ from: TopologyNode; to: TopologyNode }>;
}

export interface TestSentinel {
  readonly kind: 'sentinel';
  /** The master group name known to the sentinels. */
  readonly name: string;
  readonly sentinels: Array<{ host: string; port: number }>;
  /** `redis+sentinel://127.0.0.1:<s1>,.../<name>` */
  readonly url: string;
  /** Data nodes (the initial master first, then the replica). */
  readonly nodes: TopologyNode[];
  namespace(): string;
  /** The data node the sentinels currently name as master. */
  master(): Promise<TopologyNode>;
  /** Revives killed nodes and waits until one master and one replica are connected and every sentinel agrees. */
  heal(): Promise<void>;
}

function available(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port that is free, and (for cluster nodes) whose bus port (+10000) is free too. */
async function freePort(withBus: boolean): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await portFree(port)) && (!withBus || (await portFree(port + 10_000)))) return port;
  }
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

function launch(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.resume();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = 30_000): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() - started > deadlineMs) throw new Error(`${what}: not reached within ${deadlineMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs one command on a short-lived connection. */
async function ask(port: number, ...args: Array<string | number>): Promise<unknown> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await probe.call(String(args[0]), ...args.slice(1).map(String));
  } finally {
    probe.disconnect();
  }
}

function info(text: unknown, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, 'm').exec(String(text));
  return match?.[1]?.trim();
}

class Node implements TopologyNode {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly args: string[],
  ) {}

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    this.child = launch(this.args);
    await until(`redis on ${this.port} answers PING`, async () => ((await ask(this.port, 'PING')) === 'PONG' ? true : undefined), 10_000);
  }

  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }

  async revive(): Promise<void> {
    if (!this.alive) await this.start();
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}

const baseArgs = (port: number, dir: string) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];

let clusterStart: Promise<TestCluster> | undefined;
let sentinelStart: Promise<TestSentinel> | undefined;
const stops: Array<() => Promise<void>> = [];

/** Starts a cluster of `masters` masters with `replicasPerMaster` replicas each (3 and 1 for the tests). */
export async function startCluster(masters = 3, replicasPerMaster = 1): Promise<TestCluster & { stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'intracom-cluster-'));
  const nodes: Node[] = [];
  const total = masters * (1 + replicasPerMaster);
  for (let i = 0; i < total; i++) {
    const port = await freePort(true);
    const nodeDir = join(dir, String(port));
    spawnSync('mkdir', ['-p', nodeDir]);
    nodes.push(new Node(port, [...baseArgs(port, nodeDir), '--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000', '--cluster-replica-validity-factor', '0']));
  }
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  stops.push(stop);
  await Promise.all(nodes.map((node) => node.start()));
  if (masters === 1 && replicasPerMaster === 0) {
    // redis-cli wants 3 masters at least: a one-node cluster is made by hand
    await ask(nodes[0].port, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
  } else {
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  }
  const seeds = nodes.map((n) => `redis://127.0.0.1:${n.port}`);
  const cluster: TestCluster & { stop(): Promise<void> } = {
    stop,
    kind: 'cluster',
    seeds,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    nodes,
    namespace: () => `c${randomUUID().slice(0, 8)}`,
    async masterOf(key: string) {
      const live = nodes.find((n) => n.alive) as Node;
      const slot = Number(await ask(live.port, 'CLUSTER', 'KEYSLOT', key));
      const slots = (await ask(live.port, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (range === undefined) throw new Error(`slot ${slot} is not served`);
      return nodes.find((n) => n.port === Number(range[2][1])) as Node;
    },
    async migrateSlot(key: string, { to, sourceFirst = false }: { to?: TopologyNode; sourceFirst?: boolean } = {}) {
      const from = await cluster.masterOf(key);
      const slot = Number(await ask(from.port, 'CLUSTER', 'KEYSLOT', key));
      const masters: TopologyNode[] = [];
      for (const node of nodes.filter((n) => n.alive)) if (info(await ask(node.port, 'INFO', 'replication'), 'role') === 'master') masters.push(node);
      const target = to ?? masters.find((n) => n !== from);
      if (target === undefined || target === from) throw new Error(`no other master to move slot ${slot} to`);
      const idOf = async (node: TopologyNode) => String(await ask(node.port, 'CLUSTER', 'MYID'));
      const [fromId, toId] = [await idOf(from), await idOf(target)];
      await ask(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await ask(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      for (;;) {
        const keys = (await ask(from.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        await ask(from.port, 'MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
      }
      const others = masters.filter((n) => n !== from && n !== target);
      if (sourceFirst) {
        await ask(from.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      for (const node of sourceFirst ? [target, ...others] : [target, from, ...others]) await ask(node.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      await until(`every node sees slot ${slot} on ${target.port}`, async () => {
        for (const node of nodes.filter((n) => n.alive)) {
          const slots = (await ask(node.port, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
          const range = slots.find(([first, last]) => slot >= first && slot <= last);
          if (range === undefined || Number(range[2][1]) !== target.port) return undefined;
        }
        return true;
      });
      return { from, to: target };
    },
    async heal() {
      for (const node of nodes) await node.revive();
      await until('cluster whole again', async () => {
        for (const node of nodes) {
          if (info(await ask(node.port, 'CLUSTER', 'INFO'), 'cluster_state') !== 'ok') return undefined;
          const listing = String(await ask(node.port, 'CLUSTER', 'NODES'));
          if (/fail|handshake|noaddr|disconnected/.test(listing)) return undefined;
        }
        const roles = await Promise.all(nodes.map(async (n) => info(await ask(n.port, 'INFO', 'replication'), 'role')));
        if (roles.filter((r) => r === 'master').length !== masters) return undefined;
        // every replica has finished its initial sync
        for (const node of nodes) {
          const replication = await ask(node.port, 'INFO', 'replication');
          if (info(replication, 'role') === 'slave' && info(replication, 'master_link_status') !== 'up') return undefined;
        }
        return true;
      }, 60_000);
    },
  };
  await cluster.heal();
  return cluster;
}

async function startSentinel(): Promise<TestSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'intracom-sentinel-'));
  const name = 'intracom';
  const [masterPort, replicaPort] = [await freePort(false), await freePort(false)];
  const data = [
    new Node(masterPort, baseArgs(masterPort, join(dir, 'm'))),
    new Node(replicaPort, [...baseArgs(replicaPort, join(dir, 'r')), '--replicaof', '127.0.0.1', String(masterPort)]),
  ];
  spawnSync('mkdir', ['-p', join(dir, 'm'), join(dir, 'r')]);
  const sentinelNodes: Node[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort(false);
    const file = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      file,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 4000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    sentinelNodes.push(new Node(port, [file, '--sentinel', '--loglevel', 'warning']));
  }
  stops.push(async () => {
    await Promise.all([...sentinelNodes, ...data].map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  await Promise.all(data.map((node) => node.start()));
  await Promise.all(sentinelNodes.map((node) => node.start()));
  const masterAddress = async (): Promise<number> => {
    const answers = await Promise.all(sentinelNodes.map((s) => ask(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name).catch(() => undefined)));
    const ports = new Set(answers.map((a) => (Array.isArray(a) ? Number(a[1]) : -1)));
    if (ports.size !== 1 || ports.has(-1)) throw new Error(`sentinels disagree on the master: ${[...ports].join(', ')}`);
    return [...ports][0];
  };
  const sentinel: TestSentinel = {
    kind: 'sentinel',
    name,
    sentinels: sentinelNodes.map((s) => ({ host: '127.0.0.1', port: s.port })),
    url: `redis+sentinel://${sentinelNodes.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
    nodes: data,
    namespace: () => `s${randomUUID().slice(0, 8)}`,
    async master() {
      const port = await masterAddress();
      return data.find((n) => n.port === port) as Node;
    },
    async heal() {
      for (const node of data) await node.revive();
      await until('sentinel deployment whole again', async () => {
        const port = await masterAddress();
        const replication = await ask(port, 'INFO', 'replication');
        if (info(replication, 'role') !== 'master' || info(replication, 'connected_slaves') !== '1') return undefined;
        const other = data.find((n) => n.port !== port) as Node;
        const theirs = await ask(other.port, 'INFO', 'replication');
        if (info(theirs, 'role') !== 'slave' || info(theirs, 'master_link_status') !== 'up') return undefined;
        for (const s of sentinelNodes) {
          const state = (await ask(s.port, 'SENTINEL', 'MASTER', name)) as string[];
          const flags = state[state.indexOf('flags') + 1];
          const replicas = Number(state[state.indexOf('num-slaves') + 1]);
          const others = Number(state[state.indexOf('num-other-sentinels') + 1]);
          if (flags !== 'master' || replicas < 1 || others < 2) return undefined;
          const listed = (await ask(s.port, 'SENTINEL', 'REPLICAS', name)) as string[][];
          if (!listed.some((r) => r[r.indexOf('flags') + 1] === 'slave' && Number(r[r.indexOf('port') + 1]) === other.port)) return undefined;
        }
        return true;
      }, 60_000);
    },
  };
  await sentinel.heal();
  return sentinel;
}

/** Whether the binaries exist; suites over topologies are skipped (with a reason) when they do not. */
export const topologiesAvailable = available();

/** The cluster of this process, started on first call. */
export function cluster(): Promise<TestCluster> {
  clusterStart ??= startCluster(3, 1);
  return clusterStart;
}

/** The Sentinel deployment of this process, started on first call. */
export function sentinel(): Promise<TestSentinel> {
  sentinelStart ??= startSentinel();
  return sentinelStart;
}

/** Stops every topology this process started. */
export async function stopTopologies(): Promise<void> {
  await Promise.all(stops.splice(0).map((stop) => stop()));
}

// Under mocha, stopped once after the last test (setup.ts); the bench calls stopTopologies itself.
atRunEnd(stopTopologies);
