/**
 * Authenticated sources and payload encryption, attacked (docs/security.md):
 * a real Redis, services with their own Ed25519 keys, and a raw connection
 * that captures, replays, alters and forges frames. Every refusal is counted
 * and never reaches a handler; nothing a forger sends crashes a receiver.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import fc from 'fast-check';
import Redis from 'ioredis';
import pino from 'pino';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisClient, RedisRPCClient, ValidationError, type AuthOptions } from '../../src/index';
import { defineVar } from '../../vars/define';
import { resolveAuth } from '../../src/envelope/AuthOptions';
import { FrameSealer } from '../../src/envelope/FrameSealer';
import { MsgpackCodec, decodeFrame, encodeFrame } from '../../src/envelope/codec';
import { until } from '../support/async';
import { useRedis } from '../support/redis-server';

function pair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

const keys = { billing: pair(), calc: pair(), evil: pair(), billing2: pair() };
const trusted = { billing: { b1: keys.billing.publicKey }, calc: { c1: keys.calc.publicKey }, evil: { e1: keys.evil.publicKey } };

function authOf(service: 'billing' | 'calc' | 'evil', extra: Partial<AuthOptions> = {}): AuthOptions {
  const keyId = { billing: 'b1', calc: 'c1', evil: 'e1' }[service];
  return { keyId, privateKey: keys[service].privateKey, publicKeys: trusted, ...extra };
}

/** Every frame published on the server, as bytes, with its channel. */
class Tap {
  readonly frames: Array<{ channel: string; bytes: Buffer }> = [];
  constructor(readonly redis: Redis) {}
  static async open(url: string): Promise<Tap> {
    const redis = new Redis(url);
    const tap = new Tap(redis);
    redis.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, bytes: Buffer) => tap.frames.push({ channel: channel.toString(), bytes }));
    await redis.psubscribe('*');
    return tap;
  }
  on(part: string): Array<{ channel: string; bytes: Buffer }> {
    return this.frames.filter((f) => f.channel.includes(part));
  }
}

describe('security: authenticated sources', function () {
  this.timeout(30_000);
  const redis = useRedis({ private: true });
  let open: Array<{ close(): Promise<void> }> = [];
  let raw: Redis;
  let tap: Tap;
  let namespace = 0;

  const track = <T extends { close(): Promise<void> }>(thing: T): T => {
    open.push(thing);
    return thing;
  };
  async function rpc(service: string, auth: AuthOptions | undefined, ns: string, extra: object = {}): Promise<RedisRPCClient> {
    const client = track(new RedisRPCClient({ service, redis: redis().url, namespace: ns, auth, ...extra }));
    await client.connect();
    return client;
  }

  beforeEach(async () => {
    namespace += 1;
    raw = new Redis(redis().url);
    tap = await Tap.open(redis().url);
  });
  afterEach(async () => {
    for (const thing of open.reverse()) await thing.close().catch(() => undefined);
    open = [];
    raw.disconnect();
    tap.redis.disconnect();
  });

  it('tells a handler the verified sender of a call, an event, and all four query types', async () => {
    const ns = `a${namespace}`;
    const calc = await rpc('calc', process.env.NOAUTH ? undefined : authOf('calc'), ns);
    const billing = await rpc('billing', process.env.NOAUTH ? undefined : authOf('billing'), ns);
    const seen: Record<string, unknown> = {};
    await calc.expose('add', ([a, b]: number[], context) => {
      seen.call = context.sender;
      return a + b;
    });
    calc.handle('q', (query, context) => {
      seen[context.type] = context.sender;
      return 'ok';
    });
    await calc.client.subscribe('prices', (_payload, event) => {
      seen.event = event.sender;
    });
    expect(await billing.callService('calc', 'add', 1, 2)).to.equal(3);
    await billing.client.publish('prices', { p: 1 });
    expect(await billing.sendSync('calc', 'q', 1)).to.equal('ok');
    expect(await billing.sendAsync('calc', 'q', 1).wait()).to.equal('ok');
    await billing.fireAndForget('calc', 'q', 1);
    await billing.broadcast('calc', 'q', 1);
    await until(() => Object.keys(seen).length === 6, 10_000, 'every kind of message');
    for (const kind of Object.keys(seen)) expect(seen[kind], kind).to.deep.equal({ service: 'billing', verified: true, keyId: 'b1' });
    // every frame on the wire was sealed
    for (const { bytes, channel } of tap.frames) expect(bytes.subarray(1, 4).toString('latin1'), channel).to.equal('\xa2s1');
    const streams = await raw.keys(`${ns}:*`);
    for (const key of streams.filter((k) => k.endsWith('queue') || k.endsWith('broadcast'))) {
      for (const [, fields] of (await raw.xrangeBuffer(key, '-', '+')) as Array<[Buffer, Buffer[]]>) expect(fields[1].subarray(1, 4).toString('latin1')).to.equal('\xa2s1');
    }
  });

  /** calc serving `add` and listening to `prices`, billing calling and publishing; what calc's handlers saw. */
  async function pairUp(ns: string, calcAuth: AuthOptions = authOf('calc'), extra: object = {}) {
    const calc = await rpc('calc', calcAuth, ns, extra);
    const calls: unknown[] = [];
    const events: unknown[] = [];
    await calc.expose('add', ([a, b]: number[], context) => {
      calls.push(context.sender);
      return a + b;
    });
    await calc.client.subscribe('prices', (payload, event) => {
      events.push({ payload, sender: event.sender });
    });
    await calc.client.subscribe('other', () => {
      events.push('other');
    });
    return { calc, calls, events };
  }

  it('refuses replayed, altered, re-addressed and forged frames, counting each, and delivers the genuine one once', async () => {
    const ns = `b${namespace}`;
    const { calc, calls, events } = await pairUp(ns);
    const billing = await rpc('billing', authOf('billing'), ns);
    await billing.callService('calc', 'add', 1, 2);
    await billing.client.publish('prices', { p: 1 });
    await until(() => events.length === 1, 5000, 'the event');
    const request = tap.frames.find((f) => f.channel.includes('rpc') && !f.channel.includes('reply')) as { channel: string; bytes: Buffer };
    const event = tap.on('prices')[0];
    const before = calc.client.stats();
    // replayed: the same bytes again, on the same channel
    await raw.publish(event.channel, event.bytes);
    await raw.publish(request.channel, request.bytes);
    // altered: one byte of the body flipped
    const altered = Buffer.from(event.bytes);
    altered[altered.length - 80] ^= 0x01;
    await raw.publish(event.channel, altered);
    // re-addressed: a genuine frame moved to another channel the receiver listens on
    await raw.publish(event.channel.replace('prices', 'other'), event.bytes);
    // unsigned: what a client without keys writes
    await raw.publish(event.channel, encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 666 } }]));
    await until(() => calc.client.stats().authRefused - before.authRefused === 5, 5000, 'five refusals');
    const after = calc.client.stats();
    expect(after.authReplayed - before.authReplayed).to.equal(2);
    expect(after.authForged - before.authForged).to.equal(2);
    expect(after.authUnsigned - before.authUnsigned).to.equal(1);
    expect(calls).to.have.length(1);
    expect(events).to.have.length(1);
  });

  it('refuses a service that claims another name: a signer other than the claim, an untrusted key id, a key of another service', async () => {
    const ns = `c${namespace}`;
    const { calc, calls, events } = await pairUp(ns);
    const before = calc.client.stats().authForged;
    // evil signs with its own (trusted) key and claims to be billing inside the frame
    const evil = new FrameSealer(resolveAuth('evil', authOf('evil')) as NonNullable<ReturnType<typeof resolveAuth>>);
    const channel = `${ns}:prices`;
    const eventChannel = (await raw.pubsub('CHANNELS', `*prices*`)) as string[];
    expect(eventChannel).to.have.length(1);
    const claim = encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 'forged' } }]);
    await raw.publish(eventChannel[0], evil.seal(claim, eventChannel[0]));
    // evil calls itself billing, signing with its own key under billing's key id, and under a key id nobody has
    for (const keyId of ['b1', 'nope']) {
      const liar = new FrameSealer(resolveAuth('billing', { keyId, privateKey: keys.evil.privateKey }) as NonNullable<ReturnType<typeof resolveAuth>>);
      await raw.publish(eventChannel[0], liar.seal(claim, eventChannel[0]));
    }
    // and as a whole client: service "billing", evil's key
    const impostor = await rpc('billing', { keyId: 'b1', privateKey: keys.evil.privateKey, publicKeys: trusted }, ns);
    await impostor.client.publish('prices', { p: 'impostor' });
    await impostor.with({ timeoutMs: 300 }).callService('calc', 'add', 1, 1).catch(() => undefined);
    await until(() => calc.client.stats().authForged - before === 5, 5000, `five forgeries (channel ${channel})`);
    expect(calls).to.have.length(0);
    expect(events).to.have.length(0);
  });

  it('refuses a frame outside the replay window either way, and one never seen before inside it', async () => {
    const ns = `d${namespace}`;
    const { calc, events } = await pairUp(ns, authOf('calc', { replayWindowMs: 5000 }));
    const [channel] = (await raw.pubsub('CHANNELS', `*prices*`)) as string[];
    const frame = encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 1 } }]);
    const settings = resolveAuth('billing', authOf('billing')) as NonNullable<ReturnType<typeof resolveAuth>>;
    const at = (offset: number) => new FrameSealer(settings, undefined, () => Date.now() + offset).seal(frame, channel);
    const before = calc.client.stats().authReplayed;
    await raw.publish(channel, at(-6000));
    await raw.publish(channel, at(+6000));
    await raw.publish(channel, at(-4000));
    await until(() => events.length === 1, 5000, 'the frame inside the window');
    expect(calc.client.stats().authReplayed - before).to.equal(2);
  });

  it('accepts every key of a rotation, and refuses a retired one', async () => {
    const ns = `e${namespace}`;
    const rotating = { ...trusted, billing: { b1: keys.billing.publicKey, b2: keys.billing2.publicKey } };
    const { calls } = await pairUp(ns, authOf('calc', { publicKeys: rotating }));
    const old = await rpc('billing', authOf('billing'), ns);
    const renewed = await rpc('billing', { keyId: 'b2', privateKey: keys.billing2.privateKey, publicKeys: rotating }, ns);
    expect(await old.callService('calc', 'add', 1, 1)).to.equal(2);
    expect(await renewed.callService('calc', 'add', 2, 2)).to.equal(4);
    expect(calls).to.deep.equal([
      { service: 'billing', verified: true, keyId: 'b1' },
      { service: 'billing', verified: true, keyId: 'b2' },
    ]);
    // the rotation done: calc trusts b2 only
    const retiredCalc = await rpc('calc', authOf('calc', { publicKeys: { ...trusted, billing: { b2: keys.billing2.publicKey } } }), `${ns}r`);
    await retiredCalc.expose('add', ([a, b]: number[]) => a + b);
    const oldR = await rpc('billing', authOf('billing'), `${ns}r`);
    const renewedR = await rpc('billing', { keyId: 'b2', privateKey: keys.billing2.privateKey, publicKeys: rotating }, `${ns}r`);
    expect(await renewedR.callService('calc', 'add', 3, 3)).to.equal(6);
    const error = await oldR.with({ timeoutMs: 300 }).callService('calc', 'add', 1, 1).catch((e: Error) => e);
    expect(error).to.be.an('error');
    expect(retiredCalc.client.stats().authForged).to.be.greaterThan(0);
  });

  it('migration mode: unsigned frames are delivered unverified, signed ones still verified, bad ones still refused', async () => {
    const ns = `f${namespace}`;
    const { calc, calls } = await pairUp(ns, authOf('calc', { requireSigned: false }));
    // a process of the migration's first step: it can open sealed frames (the replies) but has no key to sign
    const plain = await rpc('billing', { publicKeys: trusted, requireSigned: false }, ns);
    const signed = await rpc('billing', authOf('billing'), ns);
    expect(await plain.callService('calc', 'add', 1, 1)).to.equal(2);
    expect(await signed.callService('calc', 'add', 1, 1)).to.equal(2);
    expect(calls).to.deep.equal([
      { service: 'billing', verified: false },
      { service: 'billing', verified: true, keyId: 'b1' },
    ]);
    const impostor = await rpc('billing', { keyId: 'b1', privateKey: keys.evil.privateKey, publicKeys: trusted }, ns);
    await impostor.with({ timeoutMs: 300 }).callService('calc', 'add', 1, 1).catch(() => undefined);
    expect(calls).to.have.length(2);
    expect(calc.client.stats().authForged).to.equal(1);
  });

  it('a flood of bad signatures is counted, logged a bounded number of times, remembered nowhere, and crashes nothing', async () => {
    const ns = `g${namespace}`;
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) }));
    const { calc, events } = await pairUp(ns, authOf('calc'), { logger });
    const [channel] = (await raw.pubsub('CHANNELS', `*prices*`)) as string[];
    const frame = encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 1 } }]);
    const sealer = new FrameSealer(resolveAuth('billing', authOf('billing')) as NonNullable<ReturnType<typeof resolveAuth>>);
    const genuine = sealer.seal(frame, channel);
    const flood = 5000;
    const pipeline = raw.pipeline();
    for (let i = 0; i < flood; i++) {
      const bad = Buffer.from(genuine);
      bad.writeUInt32BE(i, bad.length - 8); // a signature that does not verify
      pipeline.publish(channel, bad);
    }
    await pipeline.exec();
    await until(() => calc.client.stats().authForged === flood, 20_000, 'every forgery counted');
    expect(events).to.have.length(0);
    expect(lines.length).to.be.at.most(5);
    expect(calc.client.route.sealer?.rememberedIds).to.equal(0);
    // the receiver still works
    await raw.publish(channel, genuine);
    await until(() => events.length === 1, 5000, 'the genuine event after the flood');
  });

  it('a flood of forged, replayed and unsigned frames, and of valid frames of another signer stamped ahead, changes nothing for later legitimate traffic', async () => {
    const ns = `m${namespace}`;
    // a small replay window, so that the other signer's flood overflows it many times over
    const { calc, calls, events } = await pairUp(ns, authOf('calc', { maxReplayIds: 50 }));
    const billing = await rpc('billing', authOf('billing'), ns);
    expect(await billing.callService('calc', 'add', 1, 1)).to.equal(2);
    await billing.client.publish('prices', { p: 0 });
    await until(() => events.length === 1, 5000, 'the first event');
    const request = tap.frames.find((f) => f.channel.includes('service.{calc}.rpc.')) as { channel: string; bytes: Buffer };
    const event = tap.on('prices')[0];
    const before = calc.client.stats();
    // evil holds a trusted key: its frames verify, stamped 25 s ahead of this clock (within the 30 s window)
    const ahead = new FrameSealer(resolveAuth('evil', authOf('evil')) as NonNullable<ReturnType<typeof resolveAuth>>, undefined, () => Date.now() + 25_000);
    const otherChannel = event.channel.replace('prices', 'other');
    const pipeline = raw.pipeline();
    for (let i = 0; i < 500; i++) {
      const forged = Buffer.from(event.bytes);
      forged.writeUInt32BE(i, forged.length - 8);
      pipeline.publish(event.channel, forged);
      pipeline.publish(request.channel, request.bytes); // replayed
      pipeline.publish(event.channel, event.bytes); // replayed
      pipeline.publish(event.channel, encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 666 } }]));
      pipeline.publish(otherChannel, ahead.seal(encodeFrame(new MsgpackCodec(), [{ headers: { name: 'other', createdAt: '', serviceName: 'evil' }, payload: i }]), otherChannel));
    }
    await pipeline.exec();
    await until(() => calc.client.stats().authRefused - before.authRefused === 2000, 20_000, 'every forged, replayed and unsigned frame refused');
    const flooded = calc.client.stats();
    expect(flooded.authForged - before.authForged).to.equal(500);
    expect(flooded.authReplayed - before.authReplayed).to.equal(1000);
    expect(flooded.authUnsigned - before.authUnsigned).to.equal(500);
    expect(calc.client.route.sealer?.rememberedIds, 'bounded: each signer its own window').to.be.at.most(2 * 50);
    // later legitimate traffic: every call and event of billing taken, verified, once, and nothing of it refused
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => billing.callService('calc', 'add', i, 1)));
    expect(results).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    for (let i = 1; i <= 20; i++) await billing.client.publish('prices', { p: i });
    await until(() => events.filter((e) => e !== 'other').length === 21, 5000, 'the events after the flood');
    expect(calc.client.stats().authRefused - flooded.authRefused, 'no legitimate frame refused').to.equal(0);
    expect(calls.slice(-20)).to.deep.equal(Array.from({ length: 20 }, () => ({ service: 'billing', verified: true, keyId: 'b1' })));
  });

  it('refuses a downgrade to clear text: frames signed in clear, a confidential value signed in clear, and one sealed by a trusted service other than its owner, each counted', async () => {
    const ns = `n${namespace}`;
    const encryption = { keyId: 'x1', keys: { x1: Buffer.alloc(32, 5) } };
    const { calc, calls, events } = await pairUp(ns, authOf('calc', { encryption }));
    // billing holds a valid signing key and the encryption key, and sends in clear
    const downgraded = await rpc('billing', authOf('billing', { encryption: { ...encryption, frames: false } }), ns, { timeoutMs: 1500 });
    const before = calc.client.stats();
    await downgraded.client.publish('prices', { p: 1 });
    expect(await downgraded.callService('calc', 'add', 1, 2).catch((error: Error) => error)).to.be.instanceOf(Error);
    await until(() => calc.client.stats().authUnencrypted - before.authUnencrypted >= 2, 5000, 'the clear event and request refused');
    expect(calls).to.have.length(0);
    expect(events).to.have.length(0);
    // the same service encrypting is served
    const genuine = await rpc('billing', authOf('billing', { encryption }), ns);
    expect(await genuine.callService('calc', 'add', 1, 2)).to.equal(3);

    const Token = defineVar({ name: 'Token', type: 'string', owner: 'billing', description: 'a confidential token', confidential: true });
    const owner = track(new RedisClient({ service: 'billing', redis: redis().url, namespace: ns, auth: authOf('billing', { encryption }) }));
    const reader = track(new RedisClient({ service: 'calc', redis: redis().url, namespace: ns, auth: authOf('calc', { encryption }) }));
    await Promise.all([owner.connect(), reader.connect()]);
    await owner.set(Token, 'genuine');
    expect(await reader.get(Token)).to.equal('genuine');
    const key = (await raw.keys(`${ns}:*Token*`))[0];
    const counted = reader.stats();
    // signed with the owner's key, in clear
    const signer = new FrameSealer(resolveAuth('billing', authOf('billing')) as NonNullable<ReturnType<typeof resolveAuth>>);
    await raw.set(key, signer.seal(Buffer.from('downgraded'), key, false));
    expect(await reader.get(Token).catch((error: Error) => error.name)).to.equal('AuthenticationError');
    expect(reader.stats().authUnencrypted - counted.authUnencrypted).to.equal(1);
    // sealed and encrypted by calc, trusted but not the owner
    await reader.set(Token, 'not-the-owner');
    expect(await owner.get(Token).catch((error: Error) => error.message)).to.match(/signed by "calc", not by its owner "billing"/);
    expect(owner.stats().authForged).to.equal(1);
  });

  it('survives hostile bytes in every field of a seal (property)', async () => {
    const ns = `h${namespace}`;
    const { calc, events } = await pairUp(ns);
    const [channel] = (await raw.pubsub('CHANNELS', `*prices*`)) as string[];
    const frame = encodeFrame(new MsgpackCodec(), [{ headers: { name: 'prices', createdAt: '', serviceName: 'billing' }, payload: { p: 1 } }]);
    const sealer = new FrameSealer(resolveAuth('billing', authOf('billing')) as NonNullable<ReturnType<typeof resolveAuth>>);
    const opener = new FrameSealer(resolveAuth('calc', authOf('calc')) as NonNullable<ReturnType<typeof resolveAuth>>);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 8 }), async (at, xor, tail) => {
        const genuine = sealer.seal(frame, channel);
        const bad = Buffer.from(genuine);
        bad[at % bad.length] ^= xor;
        // any changed byte is refused, by the opener in this process and by the receiver over Redis
        expect(() => opener.open(bad, channel, true)).to.throw();
        expect(() => opener.open(Buffer.concat([genuine, tail]), channel, true), 'bytes appended').to.satisfy((fn: () => unknown) => tail.length === 0 || throws(fn));
        await raw.publish(channel, bad);
        sent += 1;
      }),
      { numRuns: 300 },
    );
    await until(() => calc.client.stats().authRefused + calc.client.stats().malformed >= sent, 10_000, 'every hostile frame refused');
    expect(events).to.have.length(0);
  });

  it('encryption: no plaintext of calls, replies, events or queries in pub/sub or streams; a receiver without the key refuses', async () => {
    const ns = `i${namespace}`;
    const encryption = { keyId: 'x1', keys: { x1: Buffer.alloc(32, 7) } };
    const secret = 'PLAINTEXT-MARKER-4711';
    const calc = await rpc('calc', authOf('calc', { encryption }), ns);
    const billing = await rpc('billing', authOf('billing', { encryption }), ns);
    const got: unknown[] = [];
    await calc.expose('echo', ([text]: string[]) => `${text}!`);
    calc.handle('q', (query) => {
      got.push(query);
      return query;
    });
    await calc.client.subscribe('prices', (payload) => {
      got.push(payload);
    });
    expect(await billing.callService('calc', 'echo', secret)).to.equal(`${secret}!`);
    expect(await billing.sendSync('calc', 'q', secret)).to.equal(secret);
    await billing.fireAndForget('calc', 'q', secret);
    await billing.broadcast('calc', 'q', secret);
    await billing.client.publish('prices', secret);
    await until(() => got.length === 4, 10_000, 'every message decrypted and handled');
    expect(tap.frames.length).to.be.greaterThan(4);
    for (const { bytes, channel } of tap.frames) expect(bytes.includes(secret), channel).to.equal(false);
    const keysNow = await raw.keys(`${ns}:*`);
    for (const key of keysNow) {
      const type = await raw.type(key);
      const dump = type === 'stream' ? JSON.stringify(await raw.xrange(key, '-', '+')) : type === 'string' ? String(await raw.getBuffer(key)) : '';
      expect(dump.includes(secret), key).to.equal(false);
    }
    // a trusted signer, but a receiver without the key: refused, counted
    const keyless = await rpc('calc', authOf('calc'), `${ns}k`);
    const received: unknown[] = [];
    await keyless.client.subscribe('prices', (payload) => {
      received.push(payload);
    });
    const sender = await rpc('billing', authOf('billing', { encryption }), `${ns}k`);
    await sender.client.publish('prices', secret);
    await until(() => keyless.client.stats().authForged === 1, 5000, 'the undecryptable frame refused');
    expect(received).to.have.length(0);
  });

  it('refuses bad auth options with a ValidationError naming the option, never printing key material', () => {
    const pem = keys.billing.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const cases: Array<[AuthOptions, RegExp]> = [
      [{ privateKey: pem }, /auth\.keyId is required/],
      [{ keyId: 'k', privateKey: 'not a key' }, /auth\.privateKey must be an Ed25519 private key/],
      [{ keyId: 'k', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, /auth\.privateKey must be an Ed25519 private key; received a ec private key/],
      [{ publicKeys: { billing: { b1: 'garbage' } } }, /auth\.publicKeys\.billing\.b1 must be an Ed25519 public key/],
      [{ replayWindowMs: 0 }, /auth\.replayWindowMs must be a positive integer; received 0/],
      [{ keyId: 'k', privateKey: pem, encryption: { keyId: 'x', keys: { x: Buffer.alloc(16) } } }, /auth\.encryption\.keys\.x must be 32 bytes .* received 16 bytes/],
      [{ keyId: 'k', privateKey: pem, encryption: { keyId: 'y', keys: { x: Buffer.alloc(32) } } }, /auth\.encryption\.keyId must name one of auth\.encryption\.keys; received "y"/],
      [{ encryption: { keyId: 'x', keys: { x: Buffer.alloc(32) } } }, /auth\.encryption\.frames needs a signing key/],
      [{ keyID: 'k' } as AuthOptions, /unknown RedisClient option "auth\.keyID"; did you mean "auth\.keyId"\?/],
      [{ encryption: { keyId: 'x', keys: {}, frame: false } } as unknown as AuthOptions, /auth\.encryption\.frame/],
    ];
    for (const [options, message] of cases) {
      let error: unknown;
      try {
        new RedisRPCClient({ service: 'billing', auth: options });
      } catch (thrown) {
        error = thrown;
      }
      expect(error, message.source).to.be.instanceOf(ValidationError);
      expect((error as Error).message).to.match(message);
      expect((error as Error).message).not.to.include('PRIVATE KEY');
    }
  });

  it('reads keys from files through the environment when no auth option is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'intracom-keys-'));
    writeFileSync(join(dir, 'billing.pem'), keys.billing.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const trustedDir = join(dir, 'trusted');
    mkdirSync(trustedDir);
    writeFileSync(join(trustedDir, 'billing.b1.pem'), keys.billing.publicKey.export({ type: 'spki', format: 'pem' }));
    const settings = resolveAuth('billing', undefined, { INTRACOM_AUTH_KEY_ID: 'b1', INTRACOM_AUTH_PRIVATE_KEY_FILE: join(dir, 'billing.pem'), INTRACOM_AUTH_PUBLIC_KEYS_DIR: trustedDir });
    expect(settings?.keyId).to.equal('b1');
    expect([...(settings?.publicKeys.get('billing')?.keys() ?? [])]).to.deep.equal(['b1']);
    const sealer = new FrameSealer(settings as NonNullable<typeof settings>);
    const opener = new FrameSealer(resolveAuth('calc', { publicKeysDir: trustedDir }) as NonNullable<typeof settings>);
    expect(opener.open(sealer.seal(Buffer.from([0x92, 3, 1]), 'to'), 'to', true).sender).to.deep.equal({ service: 'billing', verified: true, keyId: 'b1' });
    expect(resolveAuth('billing', undefined, {})).to.equal(undefined);
    rmSync(dir, { recursive: true });
  });

  it('a confidential variable: stored encrypted and signed, read back, never in clear in Redis or in change events; tampering and moving refused', async () => {
    const ns = `j${namespace}`;
    const encryption = { keyId: 'x1', keys: { x1: Buffer.alloc(32, 3) } };
    const Token = defineVar({ name: 'ApiToken', type: 'string', owner: 'billing', description: 'a confidential token', confidential: true });
    const Other = defineVar({ name: 'OtherToken', type: 'string', owner: 'billing', description: 'another', confidential: true });
    const Count = defineVar({ name: 'Count', type: 'integer', owner: 'billing', description: 'a count', confidential: true });
    const writer = track(new RedisClient({ service: 'billing', redis: redis().url, namespace: ns, auth: authOf('billing', { encryption }) }));
    const reader = track(new RedisClient({ service: 'calc', redis: redis().url, namespace: ns, auth: authOf('calc', { encryption }) }));
    await Promise.all([writer.connect(), reader.connect()]);
    const changes: unknown[] = [];
    await reader.watch(Token, (change) => {
      changes.push(change);
    });
    const secret = 'tok-PLAINTEXT-0042';
    await writer.set(Token, secret);
    expect(await reader.get(Token)).to.equal(secret);
    await until(() => changes.length === 1, 5000, 'the change event');
    expect(changes[0]).to.deep.include({ value: null, secret: true, deleted: false, changedBy: 'billing', sender: { service: 'billing', verified: true, keyId: 'b1' } });
    const key = (await raw.keys(`${ns}:*ApiToken*`))[0];
    const stored = (await raw.getBuffer(key)) as Buffer;
    expect(stored.includes(secret)).to.equal(false);
    for (const { bytes } of tap.frames) expect(bytes.includes(secret)).to.equal(false);
    // moved to another variable's key: refused (it names the key it was written for)
    await writer.set(Other, 'other');
    await raw.set((await raw.keys(`${ns}:*OtherToken*`))[0], stored);
    expect(await reader.get(Other).catch((error: Error) => error.name)).to.equal('AuthenticationError');
    // altered: refused
    const altered = Buffer.from(stored);
    altered[altered.length - 70] ^= 1;
    await raw.set(key, altered);
    expect(await reader.get(Token).catch((error: Error) => error.name)).to.equal('AuthenticationError');
    // plain bytes written by someone without keys: refused
    await raw.set(key, secret);
    expect(await reader.get(Token).catch((error: Error) => error.name)).to.equal('AuthenticationError');
    expect(reader.stats().authRefused).to.equal(3);
    const increment = await writer.increment(Count).catch((error: Error) => error);
    expect(increment).to.be.instanceOf(ValidationError);
    const keyless = track(new RedisClient({ service: 'calc', redis: redis().url, namespace: ns, auth: authOf('calc') }));
    await keyless.connect();
    expect(((await keyless.set(Token, 'x').catch((error: Error) => error)) as Error).message).to.match(/to write auth\.encryption/);
    await writer.set(Token, secret);
    expect(await keyless.get(Token).catch((error: Error) => error.name)).to.equal('AuthenticationError');
  });

  it('a caller drops a reply signed by another service than the one it called (a fake instance answering)', async () => {
    const ns = `k${namespace}`;
    const calc = await rpc('calc', authOf('calc'), ns);
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    await calc.expose('slow', async () => {
      await released;
      return 'genuine';
    });
    const billing = await rpc('billing', authOf('billing'), ns);
    const answer = billing.callService('calc', 'slow');
    await until(() => tap.frames.some((f) => f.channel.includes('service.{calc}.rpc.')), 5000, 'the request on the wire');
    const request = tap.frames.find((f) => f.channel.includes('service.{calc}.rpc.')) as { channel: string; bytes: Buffer };
    const opener = new FrameSealer(resolveAuth('calc', authOf('calc')) as NonNullable<ReturnType<typeof resolveAuth>>);
    const [message] = decodeFrame(new MsgpackCodec(), opener.open(request.bytes, request.channel, false).inner, 1 << 20) as Array<{ headers?: { sourceInstance: string }; payloads?: Array<{ queryId: string }>; queryId?: string; sourceInstance?: string }>;
    const queryId = message.payloads?.[0].queryId ?? (message.queryId as string);
    const replyChannel = `${ns}:intracom.rpc.reply.{billing}.${message.headers?.sourceInstance ?? message.sourceInstance}.from.{calc}`;
    const evil = new FrameSealer(resolveAuth('evil', authOf('evil')) as NonNullable<ReturnType<typeof resolveAuth>>);
    await raw.publish(replyChannel, evil.seal(encodeFrame(new MsgpackCodec(), [{ queryId, result: 'forged' }]), replyChannel));
    await until(() => billing.stats().impostorReplies === 1, 5000, 'the impostor reply dropped');
    release();
    expect(await answer).to.equal('genuine');
  });
});

function throws(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
}
