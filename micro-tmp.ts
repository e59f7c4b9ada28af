import { MsgpackCodec, encodeFrame, decodeFrame } from './src/envelope/codec';
import { randomUUID } from 'node:crypto';
const c = new MsgpackCodec();
const payload = { user: 'c8a1f6e2-3b1d-4f5e-9a7c-2d4e6f8a0b1c', status: 'online', ts: 1_700_000_000_000 };
const mk = () => ({ queryId: randomUUID(), serviceNameSource: 'bench-caller', serviceNameDest: 'bench-rpc', route: 'redis', type: 'SYNC', action: 'echo', query: [payload], response: null, result: null, state: 'PENDING', query_ts: Number(process.hrtime.bigint()), response_ts: 0, query_ms: Date.now(), timeout_ms: 10000, processAttempts: 1, replyTo: 'p:intracom.rpc.reply.bench-caller.' + randomUUID(), sourceInstance: randomUUID() });
const mkSmall = () => ({ id: 5, replyTo: 'p:bench.baseline.reply.1234', args: [payload] });
for (const [name, f] of [['envelope', mk], ['small', mkSmall]] as const) {
  const msgs = Array.from({ length: 64 }, f);
  let frame = encodeFrame(c, msgs);
  console.log(name, 'frame bytes', frame.length, 'per msg', frame.length / 64);
  let t = performance.now();
  for (let i = 0; i < 2000; i++) frame = encodeFrame(c, msgs);
  console.log(name, 'encode µs/msg', (performance.now() - t) * 1000 / (2000 * 64));
  t = performance.now();
  for (let i = 0; i < 2000; i++) decodeFrame(c, frame, 1e9);
  console.log(name, 'decode µs/msg', (performance.now() - t) * 1000 / (2000 * 64));
  t = performance.now();
  for (let i = 0; i < 2000; i++) c.encode(msgs[0]);
  console.log(name, 'single encode µs', (performance.now() - t) * 1000 / 2000);
}
