/**
 * Scenarios `cluster-events`, `cluster-rpc-concurrent` and
 * `cluster-fire-and-forget`: the same intracom work on a Redis Cluster of 1
 * master (system `baseline` here) and of 3 masters (system `intracom`), both
 * without replicas, started from the `redis-server` binary for this run. Six
 * services whose hash tags fall two on each master of the 3-master cluster
 * share the work evenly: events to each service's topic (sharded pub/sub),
 * 64 RPC calls in flight spread over the services, FIRE_AND_FORGET queries
 * spread over them. Clients run in this one process.
 *
 * Beside ops/s: `commands_per_shard` (commands each master ran, from INFO
 * commandstats), `server_cpu_us_per_op` (user + system CPU of every
 * redis-server, per delivered event, answered call or processed query) and
 * `client_cpu_us_per_op` (this process). On a machine of 2 cores the client
 * process is the bottleneck: what more masters change is how the server's
 * work spreads, which these figures show.
 */
import Redis from 'ioredis';
import { performance } from 'node:perf_hooks';
import { RedisClient } from '../../../src/client/RedisClient';
import { RedisRPCClient } from '../../../src/rpc/RedisRPCClient';
import { serviceEvents } from '../../../vars/names';
import { startCluster, topologiesAvailable, type TestCluster } from '../../support/redis-topologies';
import { result, type BenchContext, type BenchResult, type Scenario } from '../harness';

const IN_FLIGHT = 64;
const EVENT_WINDOW = 3000;
const QUERY_WINDOW = 3000;

/** Six service names, two in each third of the slot space (the 3-master cluster's split). */
async function spreadServices(cluster: TestCluster): Promise<string[]> {
  const probe = new Redis({ port: cluster.nodes[0].port, lazyConnect: true });
  await probe.connect();
  const picked: string[] = [];
  const perThird = [0, 0, 0];
  for (let i = 0; picked.length < 6; i++) {
    const name = `svc${i}`;
    const third = Math.min(2, Math.floor(Number(await probe.call('CLUSTER', 'KEYSLOT', name)) / 5462));
    if (perThird[third] < 2) {
      perThird[third] += 1;
      picked.push(name);
    }
  }
  probe.disconnect();
  return picked;
}

interface ServerLoad {
  commands: number[];
  cpuUs: number;
}

async function serverLoad(cluster: TestCluster): Promise<ServerLoad> {
  const commands: number[] = [];
  let cpuUs = 0;
  for (const node of cluster.nodes) {
    const probe = new Redis({ port: node.port, lazyConnect: true });
    await probe.connect();
    const stats = await probe.info('commandstats');
    commands.push([...stats.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0));
    const cpu = await probe.info('cpu');
    cpuUs += (Number(/used_cpu_user:([\d.]+)/.exec(cpu)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)?.[1])) * 1e6;
    probe.disconnect();
  }
  return { commands, cpuUs };
}

/** Runs `work` for `durationMs` and reports it with the per-shard and CPU figures. */
async function measured(
  scenario: string,
  system: 'baseline' | 'intracom',
  cluster: TestCluster,
  work: (until: number) => Promise<{ ops: number; latencies: number[] }>,
  durationMs: number,
): Promise<BenchResult> {
  const before = await serverLoad(cluster);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const { ops, latencies } = await work(started + durationMs);
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const after = await serverLoad(cluster);
  const commands = after.commands.map((n, i) => n - before.commands[i]);
  return result(scenario, system, ops, elapsed, latencies, {
    masters: cluster.nodes.length,
    commands_per_shard: commands,
    commands_per_op: Math.round((commands.reduce((a, b) => a + b, 0) / Math.max(1, ops)) * 1000) / 1000,
    server_cpu_us_per_op: Math.round((after.cpuUs - before.cpuUs) / Math.max(1, ops)),
    client_cpu_us_per_op: Math.round((cpu.user + cpu.system) / Math.max(1, ops)),
  });
}

async function events(cluster: TestCluster, system: 'baseline' | 'intracom', services: string[], durationMs: number): Promise<BenchResult> {
  const options = { redis: cluster.url, namespace: 'bench' };
  const publisher = new RedisClient({ service: 'producer', ...options });
  const subscribers = services.map((service) => new RedisClient({ service, ...options }));
  await Promise.all([publisher, ...subscribers].map((c) => c.connect()));
  let received = 0;
  await Promise.all(subscribers.map((client, i) => client.subscribe(serviceEvents(services[i]), () => void (received += 1))));
  let sent = 0;
  const outcome = await measured(
    'cluster-events',
    system,
    cluster,
    async (until) => {
      const start = received;
      while (performance.now() < until) {
        if (sent - received < EVENT_WINDOW) {
          for (let i = 0; i < 600; i++) void publisher.publish(serviceEvents(services[i % services.length]), { i }).catch(() => undefined);
          sent += 600;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      return { ops: received - start, latencies: [] };
    },
    durationMs,
  );
  await Promise.all([publisher, ...subscribers].map((c) => c.close()));
  return outcome;
}

async function rpc(cluster: TestCluster, system: 'baseline' | 'intracom', services: string[], durationMs: number): Promise<BenchResult> {
  const options = { redis: cluster.url, namespace: 'bench', queues: { consume: false } };
  const caller = new RedisRPCClient({ service: 'caller', ...options });
  const servers = services.map((service) => new RedisRPCClient({ service, ...options }));
  await Promise.all([caller, ...servers].map((c) => c.connect()));
  await Promise.all(servers.map((server) => server.expose<[number]>('inc', ([n]) => n + 1)));
  for (const service of services) await caller.callService(service, 'inc', 0); // discover every instance before timing
  const outcome = await measured(
    'cluster-rpc-concurrent',
    system,
    cluster,
    async (until) => {
      const latencies: number[] = [];
      let done = 0;
      const lane = async (l: number) => {
        for (let i = l; performance.now() < until; i += IN_FLIGHT) {
          const t = performance.now();
          await caller.callService(services[i % services.length], 'inc', i);
          latencies.push(performance.now() - t);
          done += 1;
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, l) => lane(l)));
      return { ops: done, latencies };
    },
    durationMs,
  );
  await Promise.all([caller, ...servers].map((c) => c.close()));
  return outcome;
}

async function fireAndForget(cluster: TestCluster, system: 'baseline' | 'intracom', services: string[], durationMs: number): Promise<BenchResult> {
  const producer = new RedisRPCClient({ service: 'producer', redis: cluster.url, namespace: 'bench', queues: { consume: false } });
  const consumers = services.map((service) => new RedisRPCClient({ service, redis: cluster.url, namespace: 'bench' }));
  await Promise.all([producer, ...consumers].map((c) => c.connect()));
  let processed = 0;
  for (const consumer of consumers) consumer.handle('work', () => void (processed += 1));
  // one query per service first: a destination no consumer has ever read is refused, and the timing starts warm
  await Promise.all(services.map((service) => producer.fireAndForget(service, 'work', {}).catch(() => undefined)));
  let sent = services.length;
  const warm = Date.now() + 10_000;
  while (processed < sent && Date.now() < warm) await new Promise((resolve) => setTimeout(resolve, 5));
  const outcome = await measured(
    'cluster-fire-and-forget',
    system,
    cluster,
    async (until) => {
      const start = processed;
      while (performance.now() < until) {
        if (sent - processed < QUERY_WINDOW) {
          for (let i = 0; i < 300; i++) void producer.fireAndForget(services[i % services.length], 'work', { i }).catch(() => undefined);
          sent += 300;
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return { ops: processed - start, latencies: [] };
    },
    durationMs,
  );
  // let what is in flight drain before closing, so that the next round starts clean
  const deadline = Date.now() + 10_000;
  while (processed < sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await Promise.all([producer, ...consumers].map((c) => c.close()));
  return outcome;
}

/** Averages rounds of one system: ops/s and per-op figures as means, commands per shard summed. */
function combine(rounds: BenchResult[]): BenchResult {
  const mean = (key: string) => Math.round(rounds.reduce((sum, r) => sum + Number(r[key] ?? 0), 0) / rounds.length);
  const shards = rounds[0].commands_per_shard as number[];
  return {
    ...rounds[rounds.length - 1],
    ops_per_s: mean('ops_per_s'),
    rounds: rounds.map((r) => r.ops_per_s),
    commands_per_shard: shards.map((_, i) => rounds.reduce((sum, r) => sum + (r.commands_per_shard as number[])[i], 0)),
    server_cpu_us_per_op: mean('server_cpu_us_per_op'),
    client_cpu_us_per_op: mean('client_cpu_us_per_op'),
  };
}

export const scenario: Scenario = {
  name: 'cluster',
  async run(context: BenchContext): Promise<BenchResult[]> {
    if (!topologiesAvailable) {
      process.stderr.write('  skipped: needs the redis-server and redis-cli binaries to start its clusters\n');
      return [];
    }
    const durationMs = Math.max(1000, Math.round(3000 * context.scale));
    process.stderr.write('  clusters of 1 and 3 masters ...\n');
    const one = await startCluster(1, 0);
    const three = await startCluster(3, 0);
    const systems = [
      ['baseline', one],
      ['intracom', three],
    ] as const;
    const services = await spreadServices(three);
    const results: BenchResult[] = [];
    try {
      for (const work of [events, rpc, fireAndForget]) {
        // a warm-up of each, then two rounds each, alternating, so that neither side gets the process cold or hot alone
        for (const [system, cluster] of systems) await work(cluster, system, services, 500);
        const rounds: Record<string, BenchResult[]> = { baseline: [], intracom: [] };
        for (let round = 0; round < 2; round++) for (const [system, cluster] of systems) rounds[system].push(await work(cluster, system, services, durationMs));
        results.push(combine(rounds.baseline), combine(rounds.intracom));
      }
    } finally {
      await Promise.all([one.stop(), three.stop()]);
    }
    return results;
  },
};
