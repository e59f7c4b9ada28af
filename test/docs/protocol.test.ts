/**
 * The wire protocol page's example, as a foreign client would send it:
 * the bytes of its `printf ... | redis-cli -x PUBLISH` line reach a
 * subscriber as an event with its headers.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { RedisClient, type ReceivedEvent } from '../../src/client/RedisClient';
import { MsgpackCodec, PROTOCOL_VERSION, decodeFrame } from '../../src/envelope/codec';
import { defineVar } from '../../vars/define';
import { until } from '../support/async';
import { decodeMsgpack } from '../../src/envelope/msgpack';
import { invalidEventReason, invalidQueryReason } from '../../src/envelope/validate';
import { invalidReplyReason, invalidRequestReason } from '../../src/rpc/wire';
import { startRedis } from '../support/redis-server';
import type { LuaScript } from '../../src/route/LuaScript';
import * as mutexScripts from '../../src/mutex/scripts';
import * as registryScripts from '../../src/route/registryScripts';
import * as variableScripts from '../../src/route/variableScripts';

/** The bytes `/bin/sh` (dash on Debian and Ubuntu, whose printf knows no `\xNN`) makes of a printf format. */
function printfBytes(format: string): Buffer {
  const run = spawnSync('/bin/sh', ['-c', `printf '${format}'`]);
  expect(run.status, String(run.stderr)).to.equal(0);
  return run.stdout;
}

describe('docs/protocol.md', function () {
  this.timeout(15_000);

  it('every hex example is the MessagePack of the value beside it, and each frame is one intracom accepts', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    const examples = [...page.matchAll(/value: (.+)\n\s*bytes: ([0-9a-f ]+)\n/g)];
    expect(examples.length).to.be.at.least(12);
    const codec = new MsgpackCodec();
    for (const [, json, hex] of examples) {
      const bytes = Buffer.from(hex.replace(/ /g, ''), 'hex');
      const value = JSON.parse(json) as unknown;
      expect(decodeMsgpack(bytes), json).to.deep.equal(value);
      if (!Array.isArray(value)) continue; // an announcement: one map, not a frame
      const [message] = decodeFrame(codec, bytes, 1 << 20) as [Record<string, unknown>];
      const reason =
        'headers' in message && 'serviceName' in (message.headers as object)
          ? invalidEventReason(message)
          : 'cancel' in message || 'probe' in message
            ? undefined
            : 'result' in message || 'error' in message
              ? invalidReplyReason(message)
              : 'payloads' in message
                ? undefined
                : 'serviceNameDest' in message
                  ? invalidQueryReason(message)
                  : invalidRequestReason(message);
      expect(reason, json).to.equal(undefined);
    }
  });

  it('the redis-cli example, run by /bin/sh, publishes an event that a RedisClient receives with its headers', async () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    const example = /printf '([^']+)' \| redis-cli -x PUBLISH (\S+)/.exec(page);
    expect(example, 'the printf | redis-cli PUBLISH line of the page').to.not.equal(null);
    const [, format, channel] = example as RegExpExecArray;
    const redis = await startRedis({ private: true }); // the example has no namespace
    const raw = new Redis(redis.url);
    const client = new RedisClient({ service: 'reader', redis: redis.url });
    try {
      await client.connect();
      let resolveEvent: (event: ReceivedEvent) => void = () => undefined;
      const received = new Promise<ReceivedEvent>((resolve) => (resolveEvent = resolve));
      await client.subscribe(channel, (_payload, event) => resolveEvent(event));
      expect(await raw.publish(channel, printfBytes(format))).to.equal(1);
      const event = await received;
      expect(event.payload).to.equal('hi');
      expect(event.headers).to.deep.equal({ name: 'module.x.events', createdAt: '2026-01-01T00:00:00Z', serviceName: 'shell' });
    } finally {
      raw.disconnect();
      await client.close();
      await redis.stop();
    }
  });

  it('shows the bytes intracom writes: a frame starts 9N 05, and an event or a variable change is { headers, payloads: [...] } even alone', async () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    expect(page).to.include(`intracom writes \`9N 0${PROTOCOL_VERSION}\``);
    const documented = (after: string): Record<string, unknown> => {
      const example = new RegExp(`${after}[\\s\\S]*?value: (.+)\\n`).exec(page);
      expect(example, after).to.not.equal(null);
      return (JSON.parse(example![1]) as unknown[])[1] as Record<string, unknown>;
    };
    const redis = await startRedis({ private: true });
    const raw = new Redis(redis.url);
    const client = new RedisClient({ service: 'cart', redis: redis.url });
    const CartItems = defineVar({ name: 'CartItems', type: 'integer', owner: 'cart', description: 'items per cart', keyed: true });
    try {
      await client.connect();
      const frames: Buffer[] = [];
      raw.on('messageBuffer', (_channel: Buffer, frame: Buffer) => void frames.push(frame));
      await raw.subscribe('module.x.events', 'intracom.var.{cart}.CartItems');
      await client.publish('module.x.events', { n: 64 });
      await client.set(CartItems, 'c1', 3);
      await until(() => frames.length === 2);
      for (const [frame, example] of [
        [frames[0], documented('One event as intracom writes it')],
        [frames[1], documented('as\\nintracom writes it')],
      ] as Array<[Buffer, Record<string, unknown>]>) {
        expect(frame[0] & 0xf0).to.equal(0x90);
        expect(frame[1]).to.equal(PROTOCOL_VERSION);
        const [message] = decodeFrame(new MsgpackCodec(), frame, 1 << 20) as [Record<string, unknown>];
        expect(Object.keys(message)).to.deep.equal(Object.keys(example));
        expect(message.payloads).to.deep.equal(example.payloads);
        expect(Object.keys(message.headers as object)).to.deep.equal(Object.keys(example.headers as object));
      }
    } finally {
      raw.disconnect();
      await client.close();
      await redis.stop();
    }
  });

  it('holds the exact Lua text of every mutex, registry and variable script (a change to a script fails here until the page shows it)', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    const documented = new Map<string, { keys: number; source: string }>();
    for (const [, name, keys, source] of page.matchAll(/^#### `(\w+)` \((\d+) KEYS\)\n\n```lua\n([\s\S]*?)\n```$/gm)) {
      expect(documented.has(name), `${name} documented twice`).to.equal(false);
      documented.set(name, { keys: Number(keys), source });
    }
    const scripts = [...Object.values(mutexScripts), ...Object.values(registryScripts), ...Object.values(variableScripts)].filter(
      (value: unknown): value is LuaScript => typeof value === 'object' && value !== null && typeof (value as LuaScript).source === 'string',
    );
    expect(scripts.length).to.equal(9);
    for (const script of scripts) {
      expect(documented.get(script.name), `the Lua of ${script.name} in docs/protocol.md`).to.deep.equal({ keys: script.numberOfKeys, source: script.source });
    }
    expect([...documented.keys()]).to.have.members(scripts.map((script) => script.name));
  });

  it('the Python decoder settings it names read what intracom writes: Map keys, Date, undefined, 64-bit and bigger integers', function () {
    const python = ['/usr/bin/python3', 'python3'].find((candidate) => spawnSync(candidate, ['-c', 'import msgpack'], { stdio: 'ignore' }).status === 0);
    if (python === undefined) return this.skip();
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    const block = /uses \(a test runs this block on what intracom writes\):\n\n```python\n([\s\S]*?)\n```/.exec(page);
    expect(block, 'the python block of "Reading frames with another MessagePack library"').to.not.equal(null);
    const payload = { m: new Map<unknown, string>([[1, 'one'], [2, 'two']]), d: new Date(1_000), u: undefined, big: 2n ** 70n, i: 2n ** 40n, s: 'text', b: Buffer.from([1, 2]) };
    const script = `${block![1]}
import sys, json
r = unpack(bytes.fromhex(sys.stdin.read()))
print(json.dumps({'m': {f'{type(k).__name__}:{k}': v for k, v in r['m'].items()}, 'd': r['d'].isoformat(), 'u': r['u'], 'big': str(r['big']), 'i': r['i'], 's': r['s'], 'b': r['b'].hex(), 'echo': pack({'i': r['i'], 's': r['s']}).hex()}))`;
    const run = spawnSync(python, ['-c', script], { input: new MsgpackCodec().encode(payload).toString('hex'), encoding: 'utf8' });
    expect(run.status, run.stderr).to.equal(0);
    const read = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(read).to.deep.include({ m: { 'int:1': 'one', 'int:2': 'two' }, d: '1970-01-01T00:00:01+00:00', u: null, big: String(2n ** 70n), i: 2 ** 40, s: 'text', b: '0102' });
    expect(decodeMsgpack(Buffer.from(read.echo as string, 'hex'))).to.deep.equal({ i: 2n ** 40n, s: 'text' });
  });
});
