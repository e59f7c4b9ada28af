/**
 * What a variable holds is what was set, and every change reaches watchers:
 * `increment` never leaves the safe integers (where two increments resolved
 * the same rounded value, watchers skipped them as not integers and `get`
 * threw on a value intracom wrote), and a string with a lone surrogate,
 * which would reach Redis and watchers as U+FFFD, is refused at `set`.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisClient, type VariableChange } from '../../src/client/RedisClient';
import { MalformedMessageError, ValidationError } from '../../src/errors/index';
import { Names } from '../../vars/names';
import { defineVar } from '../../vars/define';
import { onEachRoute } from '../support/routes';
import { rejection, until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

const MAX = Number.MAX_SAFE_INTEGER;
const Counter = defineVar({ name: 'valuesCounter', type: 'integer', owner: 'values', description: 'a counter' });
const Keyed = defineVar({ name: 'valuesKeyed', type: 'integer', owner: 'values', description: 'a keyed counter', keyed: true, keyDescription: 'an id', ttlMs: 60_000 });
const Text = defineVar({ name: 'valuesText', type: 'string', owner: 'values', description: 'a text' });
const Doc = defineVar({ name: 'valuesDoc', type: 'json', owner: 'values', description: 'a document' });
const Packed = defineVar({ name: 'valuesPacked', type: 'msgpack', owner: 'values', description: 'a packed value' });

onEachRoute('variable values', (options) => {
  let client: RedisClient;
  let watcher: RedisClient;
  before(async () => {
    client = new RedisClient(options('values'));
    watcher = new RedisClient(options('watcher'));
    await Promise.all([client.connect(), watcher.connect()]);
  });
  after(async () => Promise.all([client.close(), watcher.close()]));

  /** Watches `variable`; the returned list fills with every value a change carries. */
  async function watched(variable: typeof Counter | typeof Keyed | typeof Text): Promise<{ seen: unknown[]; stop: () => Promise<void> }> {
    const seen: unknown[] = [];
    const stop = await watcher.watch(variable, (change: VariableChange<unknown>) => void seen.push(change.value));
    return { seen, stop: async () => stop() };
  }

  it('increment to the last safe integer is delivered; one past it is refused with ValidationError naming the variable and the value, nothing stored, watchers not told', async () => {
    const { seen, stop } = await watched(Counter);
    try {
      await client.set(Counter, MAX - 2);
      expect(await client.increment(Counter)).to.equal(MAX - 1);
      expect(await client.increment(Counter)).to.equal(MAX);
      for (const by of [1, 2, MAX]) {
        const error = await rejection(client.increment(Counter, by));
        expect(error).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(new RegExp(`^increment of "valuesCounter" by ${by} would make it ${(BigInt(MAX) + BigInt(by)).toString()}, outside the safe integers ±${MAX}`));
      }
      expect(await client.get(Counter)).to.equal(MAX);
      await client.set(Counter, -MAX);
      const below = await rejection(client.increment(Counter, -1));
      expect(below).to.be.instanceOf(ValidationError);
      expect(below.message).to.match(/would make it -9007199254740992/);
      expect(await client.get(Counter)).to.equal(-MAX);
      await client.set(Counter, 7); // a marker: every change before it has arrived once it has
      await until(() => seen.at(-1) === 7);
      expect(seen).to.deep.equal([MAX - 2, MAX - 1, MAX, -MAX, 7]);
    } finally {
      await stop();
    }
  });

  it('a keyed variable with a TTL: the refused increment names the key and leaves value and TTL alone', async () => {
    await client.set(Keyed, 'k1', MAX);
    const error = await rejection(client.increment(Keyed, 'k1'));
    expect(error).to.be.instanceOf(ValidationError);
    expect(error.message).to.match(/^increment of "valuesKeyed" key "k1" by 1 would make it 9007199254740992/);
    expect(await client.get(Keyed, 'k1')).to.equal(MAX);
    expect(await client.increment(Keyed, 'k1', -5)).to.equal(MAX - 5);
  });

  it('set refuses a string with a lone surrogate (UTF-8 cannot carry it) with ValidationError naming the variable; nothing stored', async () => {
    for (const value of ['ab\ud800cd', '\udc00', 'end\ud83d']) {
      const error = await rejection(client.set(Text, value));
      expect(error).to.be.instanceOf(ValidationError);
      expect(error.message).to.match(/^variable "valuesText" expects well-formed Unicode text \(a lone surrogate would reach Redis and watchers changed/);
    }
    expect(await client.get(Text)).to.equal(null);
    const whole = 'pair \ud83d\ude00 ok';
    const { seen, stop } = await watched(Text);
    try {
      await client.set(Text, whole);
      expect(await client.get(Text)).to.equal(whole);
      await until(() => seen.length === 1);
      expect(seen).to.deep.equal([whole]);
    } finally {
      await stop();
    }
  });

  it('every call on a keyed variable refuses a key with a lone surrogate (two such keys would name one value); a well-formed pair is a key like any other', async () => {
    for (const key of ['k\ud800', 'k\udc00', '\ud83d']) {
      for (const call of [() => client.set(Keyed, key, 1), () => client.get(Keyed, key), () => client.increment(Keyed, key), () => client.delete(Keyed, key)]) {
        const error = await rejection(call());
        expect(error, key).to.be.instanceOf(ValidationError);
        expect(error.message).to.match(/^the key of variable "valuesKeyed" must be well-formed Unicode/);
      }
    }
    await client.set(Keyed, 'k\ud800', 1).catch(() => undefined);
    await client.set(Keyed, 'pair \ud83d\ude00', 2);
    expect(await client.get(Keyed, 'pair \ud83d\ude00')).to.equal(2);
    expect(await client.get(Keyed, 'k\udc00').catch(() => 'refused')).to.equal('refused');
    await client.delete(Keyed, 'pair \ud83d\ude00');
  });

  it('set refuses a json or msgpack value with a lone surrogate in a string or a key, naming where', async () => {
    const json = await rejection(client.set(Doc, { items: ['ok', 'x\ud800'] }));
    expect(json).to.be.instanceOf(ValidationError);
    expect(json.message).to.match(/^variable "valuesDoc" expects well-formed Unicode in every string \(value\.items\[1\] has a lone surrogate/);
    const key = await rejection(client.set(Packed, { ['\udfff']: 1 }));
    expect(key).to.be.instanceOf(ValidationError);
    expect(key.message).to.match(/^variable "valuesPacked" expects well-formed Unicode in every string \(a key of value has a lone surrogate/);
    expect(await client.get(Doc)).to.equal(null);
    expect(await client.get(Packed)).to.equal(null);
  });
});

describe('increment of a value written into Redis by someone else', function () {
  this.timeout(20_000);
  let redis: TestRedis;
  let raw: Redis;
  let client: RedisClient;
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    client = new RedisClient({ service: 'values', redis: redis.url, namespace: redis.namespace });
    await client.connect();
  });
  after(async () => {
    await client.close();
    raw.disconnect();
    await redis.stop();
  });

  it('a successful increment refreshes the declared TTL; a refused one leaves the TTL as it was', async () => {
    const key = new Names(redis.namespace).variable('values', 'valuesKeyed', 'ttl');
    await client.set(Keyed, 'ttl', MAX - 1, { ttlMs: 5_000 });
    expect(await client.increment(Keyed, 'ttl')).to.equal(MAX);
    expect(await raw.pttl(key)).to.be.greaterThan(5_000);
    await raw.pexpire(key, 5_000);
    expect(await rejection(client.increment(Keyed, 'ttl'))).to.be.instanceOf(ValidationError);
    expect(await raw.pttl(key)).to.be.within(1, 5_000);
  });

  it('never surfaces Redis\'s raw "would overflow" or "not an integer" reply: MalformedMessageError, nothing changed', async () => {
    const key = new Names(redis.namespace).variable('values', 'valuesCounter');
    for (const stored of ['9223372036854775807', 'seven']) {
      await raw.set(key, stored);
      const error = await rejection(client.increment(Counter, MAX));
      expect(error, stored).to.be.instanceOf(MalformedMessageError);
      expect(error.message).to.include(key);
      expect(await raw.get(key)).to.equal(stored);
    }
    // beyond the safe integers but within INCRBY's range: refused, undone inside the script
    await raw.set(key, '9007199254740999');
    const error = await rejection(client.increment(Counter, 1));
    expect(error).to.be.instanceOf(ValidationError);
    expect(error.message).to.match(/would make it 9007199254741000/);
    expect(await raw.get(key)).to.equal('9007199254740999');
  });
});
