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
import { RedisClient, RedisRPCClient, ValidationError, type AuthOptions } from '../../src/index';
import { resolveAuth } from '../../src/envelope/AuthOptions';
import { FrameSealer } from '../../src/envelope/FrameSealer';
import { MsgpackCodec, encodeFrame } from '../../src/envelope/codec';
import { until } from '../support/async';
import { useRedis } from '../support/redis-server';

function pair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

const keys = { billing: pair(), calc: pair(), evil: pair(), billing2: pair() };
const trusted = { billing: { b1: keys.billing.publicKey }, calc: { c1: keys.calc.publicKey }, evil: { e1: keys.evil.publicKey } };
const ENCRYPTION = { keyId: 'x1', keys: { x1: Buffer.alloc(32, 7) } };

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
});
