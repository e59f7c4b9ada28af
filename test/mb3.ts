import { Packr, Unpackr } from 'msgpackr';
import { decodeMsgpack } from '../src/envelope/msgpack';
const plain = new Packr({ useRecords: false, useBigIntExtension: true, moreTypes: false });
const rec = new Packr({ useRecords: true, structures: [['headers','payloads'],['name','createdAt','serviceName'], ['queryId','action','query','timeout_ms'], ['serviceNameSource','sourceInstance']], maxSharedStructures: 4 });
const recUn = new Unpackr({ useRecords: true, structures: [['headers','payloads'],['name','createdAt','serviceName'], ['queryId','action','query','timeout_ms'], ['serviceNameSource','sourceInstance']], maxSharedStructures: 4, mapsAsObjects: true });
const plainUn = new Unpackr({ useRecords: false, mapsAsObjects: true });
const ev = [3, { headers: { name: 'bench.events.intracom', createdAt: new Date().toISOString(), serviceName: 'bench-publisher' }, payloads: Array.from({ length: 256 }, (_, i) => ({ i: i*1000, t: Date.now() + i / 7 })) }];
const rpc = [3, { headers: { serviceNameSource: 'caller', sourceInstance: 'abc' }, payloads: Array.from({ length: 32 }, (_, i) => ({ queryId: 'q1234567' + i, action: 'echo', query: [i], timeout_ms: 10000 })) }];
for (const [name, v] of [['events', ev], ['rpc', rpc]] as const) {
const b = plain.pack(v); const r = rec.pack(v);
const N = 5000;
const res = { strict: 0, plain: 0, rec: 0 };
for (let round = 0; round < 10; round++) {
  let t = process.hrtime.bigint(); for (let i = 0; i < N; i++) decodeMsgpack(b); res.strict += Number(process.hrtime.bigint() - t) / N;
  t = process.hrtime.bigint(); for (let i = 0; i < N; i++) plainUn.unpack(b); res.plain += Number(process.hrtime.bigint() - t) / N;
  t = process.hrtime.bigint(); for (let i = 0; i < N; i++) recUn.unpack(r); res.rec += Number(process.hrtime.bigint() - t) / N;
}
console.log(name, 'strict', (res.strict/10).toFixed(0), 'msgpackr-plain', (res.plain/10).toFixed(0), 'records(v2)', (res.rec/10).toFixed(0), 'bytes', b.length, r.length);
}
