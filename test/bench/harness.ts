/**
 * Shared pieces of the benchmarks: latency percentiles, result lines and the
 * ratio table. Every scenario measures intracom and a minimal hand-written
 * ioredis baseline for the same work, in the same run, on the same server.
 */

/** One measured system in one scenario. */
export interface BenchResult {
  scenario: string;
  /**
   * `reference` is a further hand-written design a scenario may measure for
   * context (the RPC scenarios: the coalescing caller and responder);
   * `control` is the baseline's own code run again in processes of its own,
   * whose ratio to the baseline shows how far the scenario's ratios move by
   * noise alone.
   */
  system: 'intracom' | 'baseline' | 'reference' | 'control' | 'autopipelining' | 'intracom-per-call' | 'intracom-publish' | 'intracom-signed' | 'intracom-sealed' | 'intracom-many' | 'fair-floor' | 'bare-scripts' | 'bare-blocking';
  ops_per_s: number;
  p50_ms: number | null;
  p99_ms: number | null;
  /**
   * Set on a paced line (the rate the bench offered): its `ops_per_s` is the
   * bench's pace, not what the system can do, so the ratio tables leave its
   * rate ratios out and compare its latencies only.
   */
  offered_per_s?: number;
  [extra: string]: unknown;
}

/** What a scenario gets from the runner. */
export interface BenchContext {
  /** URL of the Redis every scenario uses. */
  redisUrl: string;
  /** A namespace unique to this run. */
  namespace: string;
  /** Scale factor: 1 normally, lower for a quick smoke run (BENCH_QUICK=1). */
  scale: number;
}

/** A benchmark scenario module. */
export interface Scenario {
  name: string;
  run(context: BenchContext): Promise<BenchResult[]>;
}

/** Percentile of sorted latencies (ms), or null when there are none. */
export function percentile(sortedMs: number[], p: number): number | null {
  if (sortedMs.length === 0) return null;
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return round(sortedMs[index]);
}

/** CPU time (user + system) a Redis server has used so far, in ms, from INFO. */
export async function redisCpuMs(admin: { info(section: string): Promise<string> }): Promise<number> {
  const info = await admin.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
}

/** Rows of cells as text, each column padded to its widest cell. */
function columns(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}

/**
 * The systems in the order of round `index` of alternating rounds: the list
 * turned by one each round, so that neither a drift of the machine nor the
 * place in the round favours one system.
 */
export function roundOrder<S>(systems: readonly S[], index: number): S[] {
  const shift = index % systems.length;
  return [...systems.slice(shift), ...systems.slice(0, shift)];
}

/** Rounds to 3 decimals for printing. */
export function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/** Builds a result from a count, an elapsed time and latency samples. */
export function result(scenario: string, system: BenchResult['system'], operations: number, elapsedMs: number, latenciesMs: number[], extra: Record<string, unknown> = {}): BenchResult {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    scenario,
    system,
    ops_per_s: Math.round((operations / elapsedMs) * 1000),
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    ...extra,
  };
}

/** The readable table with each system's ratio to the baseline of its scenario. */
export function renderTable(results: BenchResult[]): string {
  const rows: string[][] = [['scenario', 'system', 'ops/s', 'p50 ms', 'p99 ms', 'ratio ops/s', 'ratio p50']];
  for (const r of results) {
    const base = results.find((b) => b.scenario === r.scenario && b.system === 'baseline');
    const ratioOps = base && r.system !== 'baseline' && base.ops_per_s > 0 && r.offered_per_s === undefined ? `${(r.ops_per_s / base.ops_per_s).toFixed(2)}x` : '';
    const ratioP50 = base && r.system !== 'baseline' && base.p50_ms && r.p50_ms !== null ? `${(r.p50_ms / base.p50_ms).toFixed(2)}x` : '';
    rows.push([r.scenario, r.system, String(r.ops_per_s), String(r.p50_ms ?? '-'), String(r.p99_ms ?? '-'), ratioOps, ratioP50]);
  }
  return columns(rows);
}

/**
 * The systems of `all` named in BENCH_SYSTEMS (comma-separated), or all: to
 * run or profile some systems of a scenario alone.
 */
export function selectedSystems<S extends string>(all: readonly S[]): S[] {
  const wanted = process.env.BENCH_SYSTEMS?.split(',');
  return wanted === undefined ? [...all] : all.filter((system) => wanted.includes(system));
}

/** Asks peers to exit (so that CPU profiles get written), then kills what is left after 3 s. */
export async function stopPeers(peers: Array<{ send(message: unknown): void; exited(): Promise<number | null>; kill(): Promise<void> }>): Promise<void> {
  await Promise.all(
    peers.map(async (peer) => {
      try {
        peer.send({ cmd: 'exit' });
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([peer.exited(), new Promise((resolve) => (timer = setTimeout(resolve, 3_000)))]);
      clearTimeout(timer);
      await peer.kill();
    }),
  );
}

/**
 * What authentication costs in every arrangement that ran it: calls (or
 * events) per second and p50 of `intracom-signed` (every frame signed and
 * verified) and `intracom-sealed` (also encrypted) against plain `intracom`,
 * in the same run.
 */
export function renderAuthCost(results: BenchResult[]): string {
  const rows: string[][] = [['arrangement', 'signed x intracom', 'sealed x intracom', 'p50 signed x intracom', 'p50 sealed x intracom']];
  for (const scenario of [...new Set(results.map((r) => r.scenario))]) {
    const of = (system: string) => results.find((r) => r.scenario === scenario && r.system === system);
    const plain = of('intracom');
    if (plain === undefined || (of('intracom-signed') === undefined && of('intracom-sealed') === undefined)) continue;
    const ops = (system: string) => {
      const other = of(system);
      return other && plain.ops_per_s > 0 ? `${(other.ops_per_s / plain.ops_per_s).toFixed(2)}x` : '';
    };
    const p50 = (system: string) => {
      const other = of(system);
      return other?.p50_ms != null && plain.p50_ms ? `${(other.p50_ms / plain.p50_ms).toFixed(2)}x` : '';
    };
    rows.push([scenario, ops('intracom-signed'), ops('intracom-sealed'), p50('intracom-signed'), p50('intracom-sealed')]);
  }
  return columns(rows);
}

/**
 * Each system with many subscriptions against the same system with one, in
 * the same run: for every result line with `subscriptions` > 1, its ops/s
 * and its processes' CPU per operation (the `cpu_us_*` fields but Redis's)
 * over those of its twin, the line of the same system whose arrangement
 * differs only in `topics<n>` of its name and has 1 subscription. Flat in
 * topics reads as 1.00x, within what the hand-written systems move by.
 */
export function renderTopicScale(results: BenchResult[]): string {
  const rows: string[][] = [['arrangement', 'system', 'subscriptions', 'ops/s x 1 topic', 'cpu/op x 1 topic']];
  const untopiced = (r: BenchResult) => r.scenario.replace(/ topics\d+$/, '');
  const clientCpu = (r: BenchResult) => Object.entries(r).reduce((sum, [key, value]) => (key.startsWith('cpu_us_') && key !== 'cpu_us_redis' && typeof value === 'number' ? sum + value : sum), 0);
  for (const r of results) {
    if (typeof r.subscriptions !== 'number' || r.subscriptions <= 1) continue;
    const twin = results.find((t) => t.system === r.system && t.subscriptions === 1 && untopiced(t) === untopiced(r));
    if (twin === undefined) continue;
    const cpu = clientCpu(twin) > 0 ? `${(clientCpu(r) / clientCpu(twin)).toFixed(2)}x` : '';
    rows.push([r.scenario, r.system, String(r.subscriptions), twin.ops_per_s > 0 ? `${(r.ops_per_s / twin.ops_per_s).toFixed(2)}x` : '', cpu]);
  }
  if (rows.length === 1) return '';
  return columns(rows);
}

/**
 * intracom's ratios in every arrangement, worst first: calls (or events)
 * per second against each other system of the same arrangement, and the
 * p50 against the baseline's; the control's rate and p50 against the
 * baseline's (what the arrangement reads by noise alone). Sorted by the
 * ratio to the reference design where the arrangement has one, else to the
 * baseline; paced lines (whose rate the bench sets) show their p50 ratios
 * only and come last.
 */
export function renderWorstFirst(results: BenchResult[]): string {
  const others = ['baseline', 'control', 'autopipelining', 'reference', 'intracom-per-call', 'intracom-publish', 'fair-floor', 'bare-scripts', 'bare-blocking'] as const;
  const rows: Array<{ key: number; cells: string[] }> = [];
  for (const scenario of [...new Set(results.map((r) => r.scenario))]) {
    const of = (system: string) => results.find((r) => r.scenario === scenario && r.system === system);
    const intracom = of('intracom');
    const baseline = of('baseline');
    if (intracom === undefined || baseline === undefined) continue;
    const paced = intracom.offered_per_s !== undefined;
    const ratio = (system: string) => {
      const other = of(system);
      return other && other.ops_per_s > 0 && !paced ? intracom.ops_per_s / other.ops_per_s : undefined;
    };
    const p50Ratio = (line: BenchResult | undefined) => (line?.p50_ms != null && baseline.p50_ms ? line.p50_ms / baseline.p50_ms : undefined);
    const control = of('control');
    const controlRatio = control && baseline.ops_per_s > 0 && !paced ? control.ops_per_s / baseline.ops_per_s : undefined;
    const show = (value: number | undefined) => (value === undefined ? '' : `${value.toFixed(2)}x`);
    rows.push({
      key: paced ? Infinity : (ratio('reference') ?? ratio('baseline') ?? Infinity),
      cells: [scenario, ...others.map((system) => show(ratio(system))), show(p50Ratio(intracom)), show(controlRatio), show(p50Ratio(control))],
    });
  }
  rows.sort((a, b) => a.key - b.key);
  const header = ['arrangement (worst first)', ...others.map((system) => `x ${system}`), 'p50 x baseline', 'control x baseline', 'control p50 x baseline'];
  return columns([header, ...rows.map((row) => row.cells)]);
}
