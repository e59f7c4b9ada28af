/**
 * `npm run bench [scenario ...]`: runs every scenario (or the named ones)
 * against one Redis (REDIS_URL, else a private redis-server), printing one
 * JSON line per result on stdout and the ratio table on stderr.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import Redis from 'ioredis';
import { join } from 'node:path';
import { startRedis } from '../support/redis-server';
import { renderAuthCost, renderTable, renderTopicScale, renderWorstFirst, round, type BenchResult, type Scenario } from './harness';

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const directory = join(__dirname, 'scenarios');
  const scenarios: Scenario[] = [];
  for (const file of readdirSync(directory).filter((f) => f.endsWith('.ts')).sort()) {
    const loaded = (await import(join(directory, file))) as { scenario?: Scenario; default?: { scenario?: Scenario } };
    const scenario = loaded.scenario ?? loaded.default?.scenario;
    if (scenario && (wanted.length === 0 || wanted.includes(scenario.name))) scenarios.push(scenario);
  }
  if (scenarios.length === 0) throw new Error(`no scenario matches ${wanted.join(', ')}`);
  const redis = await startRedis();
  if (process.env.BENCH_PIN) {
    // only a server this run started: never move someone else's
    if (redis.kind !== 'process') throw new Error(`BENCH_PIN needs a private redis-server (this run uses a ${redis.kind} one)`);
    await pin(redis.url);
  }
  const results: BenchResult[] = [];
  try {
    for (const scenario of scenarios) {
      process.stderr.write(`running ${scenario.name} at load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} ...\n`);
      const loadBefore = loadavg()[0];
      for (const measured of await scenario.run({ redisUrl: redis.url, namespace: redis.namespace, scale: process.env.BENCH_QUICK ? 0.1 : 1 })) {
        // the machine's 1-minute load average when the scenario started and ended: how far to trust its figures
        const line = { ...measured, load_avg: [round(loadBefore), round(loadavg()[0])] };
        results.push(line);
        process.stdout.write(`${JSON.stringify(line)}\n`);
      }
    }
  } finally {
    await redis.stop();
  }
  process.stderr.write(`\n${renderTable(results)}\n\n${renderWorstFirst(results)}\n\n${renderAuthCost(results)}\n\n${renderTopicScale(results)}\n`);
}

/**
 * BENCH_PIN=1: Redis on the first CPU, this process and every peer it starts
 * (they inherit it) on the others, so that Redis and the clients do not take
 * turns on one core. Other work on the machine is not moved.
 */
async function pin(url: string): Promise<void> {
  const admin = new Redis(url);
  const pid = /^process_id:(\d+)/m.exec(await admin.info('server'))?.[1];
  admin.disconnect();
  const cpus = execFileSync('nproc', { encoding: 'utf8' }).trim();
  if (!pid || Number(cpus) < 2) throw new Error(`BENCH_PIN needs 2 CPUs and the Redis pid (nproc ${cpus}, pid ${pid})`);
  execFileSync('taskset', ['-a', '-p', '-c', '0', pid]);
  execFileSync('taskset', ['-a', '-p', '-c', `1-${Number(cpus) - 1}`, String(process.pid)]);
  process.stderr.write(`pinned: Redis (pid ${pid}) on CPU 0, the bench and its peers on CPUs 1-${Number(cpus) - 1}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
