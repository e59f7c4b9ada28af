/**
 * `npm run bench [scenario ...]`: runs every scenario (or the named ones)
 * against one Redis (REDIS_URL, else a private redis-server), printing one
 * JSON line per result on stdout and the ratio table on stderr.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from '../support/redis-server';
import { renderAuthCost, renderTable, renderWorstFirst, type BenchResult, type Scenario } from './harness';

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
  const results: BenchResult[] = [];
  try {
    for (const scenario of scenarios) {
      process.stderr.write(`running ${scenario.name} ...\n`);
      for (const line of await scenario.run({ redisUrl: redis.url, namespace: redis.namespace, scale: process.env.BENCH_QUICK ? 0.1 : 1 })) {
        results.push(line);
        process.stdout.write(`${JSON.stringify(line)}\n`);
      }
    }
  } finally {
    await redis.stop();
  }
  process.stderr.write(`\n${renderTable(results)}\n\n${renderWorstFirst(results)}\n\n${renderAuthCost(results)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
