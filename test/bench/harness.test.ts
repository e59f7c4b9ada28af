/**
 * The bench's reports (test/bench/harness.ts): what docs/benchmarks.md says
 * the ratio tables show. Pure functions over result lines, no Redis.
 */
import { expect } from 'chai';
import { renderTable, renderTopicScale, renderWorstFirst, roundOrder, type BenchResult } from './harness';

const line = (scenario: string, system: BenchResult['system'], ops: number, p50: number, extra: Record<string, unknown> = {}): BenchResult => ({ scenario, system, ops_per_s: ops, p50_ms: p50, p99_ms: p50 * 2, ...extra });

/** The cells of the row of `scenario` in a rendered table. */
const rowOf = (table: string, scenario: string): string[] =>
  (table.split('\n').find((row) => row.startsWith(`${scenario} `)) ?? '').split(/\s{2,}/).filter(Boolean);

describe('bench reports', () => {
  it('turns the order of the systems by one each round, every system once per round', () => {
    const systems = ['baseline', 'intracom', 'control'] as const;
    expect(roundOrder(systems, 0)).to.deep.equal(['baseline', 'intracom', 'control']);
    expect(roundOrder(systems, 1)).to.deep.equal(['intracom', 'control', 'baseline']);
    expect(roundOrder(systems, 2)).to.deep.equal(['control', 'baseline', 'intracom']);
    expect(roundOrder(systems, 3)).to.deep.equal(roundOrder(systems, 0));
  });

  it('gives a paced line (offered_per_s) latency ratios only, and puts it after every saturated line', () => {
    const results = [
      line('fire-and-forget@half-load', 'baseline', 1000, 0.5, { offered_per_s: 1000 }),
      line('fire-and-forget@half-load', 'intracom', 990, 0.6, { offered_per_s: 1000 }),
      line('fire-and-forget', 'baseline', 1000, 1),
      line('fire-and-forget', 'intracom', 3000, 2),
    ];
    const worst = renderWorstFirst(results).split('\n');
    expect(worst[1].startsWith('fire-and-forget ')).to.equal(true);
    expect(worst[2].startsWith('fire-and-forget@half-load')).to.equal(true);
    // the paced row: no rate ratio (its rate is the bench's pace), the p50 ratio 1.20x
    expect(rowOf(worst.join('\n'), 'fire-and-forget@half-load')).to.deep.equal(['fire-and-forget@half-load', '1.20x']);
    expect(rowOf(worst.join('\n'), 'fire-and-forget')[1]).to.equal('3.00x');
    // the table of every line: intracom's paced row has its p50 ratio and no rate ratio
    const table = renderTable(results).split('\n').map((row) => row.trimEnd().split(/\s{2,}/));
    const intracomRow = (scenario: string) => table.find((cells) => cells[0] === scenario && cells[1] === 'intracom');
    expect(intracomRow('fire-and-forget@half-load')).to.deep.equal(['fire-and-forget@half-load', 'intracom', '990', '0.6', '1.2', '1.20x']);
    expect(intracomRow('fire-and-forget')).to.deep.equal(['fire-and-forget', 'intracom', '3000', '2', '4', '3.00x', '2.00x']);
  });

  it('sorts the saturated arrangements worst first, by the ratio to the reference where there is one', () => {
    const results = [
      line('a', 'baseline', 100, 1), line('a', 'intracom', 400, 1), line('a', 'reference', 200, 1),
      line('b', 'baseline', 100, 1), line('b', 'intracom', 150, 1),
      line('c', 'baseline', 100, 1), line('c', 'intracom', 500, 1), line('c', 'reference', 500, 1),
    ];
    const order = renderWorstFirst(results).split('\n').slice(1).map((row) => row.split(' ')[0]);
    expect(order).to.deep.equal(['c', 'b', 'a']);
  });

  it('compares each system at many topics with its own 1-topic twin, and nothing else', () => {
    const results = [
      line('rpc 100B paired', 'intracom', 200, 1, { subscriptions: 1, cpu_us_callers: 2, cpu_us_responder: 2, cpu_us_redis: 1 }),
      line('rpc 100B paired topics10001', 'intracom', 190, 1, { subscriptions: 10001, cpu_us_callers: 2.5, cpu_us_responder: 2.5, cpu_us_redis: 9 }),
      line('rpc 100B paired', 'reference', 100, 1, { subscriptions: 1, cpu_us_callers: 4 }),
      line('rpc 1KB paired', 'reference', 50, 1, { subscriptions: 1, cpu_us_callers: 8 }),
      line('rpc 100B paired topics10001', 'reference', 100, 1, { subscriptions: 10001, cpu_us_callers: 4 }),
    ];
    const table = renderTopicScale(results);
    const rows = table.split('\n').slice(1).map((row) => row.trimEnd().split(/\s{2,}/));
    // Redis's CPU is left out of the client CPU ratio: (2.5 + 2.5) / (2 + 2)
    expect(rows).to.deep.equal([
      ['rpc 100B paired topics10001', 'intracom', '10001', '0.95x', '1.25x'],
      ['rpc 100B paired topics10001', 'reference', '10001', '1.00x', '1.00x'],
    ]);
    expect(renderTopicScale(results.filter((r) => r.subscriptions === 1))).to.equal('');
  });
});
