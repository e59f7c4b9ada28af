import { Packr } from 'msgpackr';
import { randomUUID } from 'node:crypto';
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
const base: any = { queryId: randomUUID(), serviceNameSource: 'bench-caller', serviceNameDest: 'bench-rpc', route: 'redis', type: 'SYNC', action: 'echo', query: [payload], response: null, result: null, state: 'PENDING', query_ts: Number(process.hrtime.bigint()), response_ts: 0, query_ms: Date.now(), timeout_ms: 10000, processAttempts: 1, replyTo: 'p:intracom.rpc.reply.bench-caller.' + randomUUID(), sourceInstance: randomUUID() };
function bench(name: string, p: Packr, v: unknown) {
  for (let i = 0; i < 1000; i++) p.pack(v);
  const t = performance.now();
  for (let i = 0; i < 20000; i++) p.pack(v);
  console.log(name, ((performance.now() - t) * 1000 / 20000).toFixed(2), 'µs');
}
const rec = new Packr({ useRecords: true, useBigIntExtension: true, moreTypes: false });
bench('records full', rec, base);
bench('records array-of-1', rec, [1, base]);
bench('no records', new Packr({ useRecords: false }), base);
const { query_ts, ...noTs } = base;
bench('records no query_ts', rec, noTs);
const few = { a: 1, b: 'x', c: [payload] };
bench('records few', rec, few);
for (const n of [4, 8, 12, 16, 17, 20]) {
  const o: any = {}; for (let i = 0; i < n; i++) o['key' + i] = i;
  bench('records ' + n + ' keys', rec, o);
}
