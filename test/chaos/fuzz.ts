/**
 * Mutated frames for the chaos run: every kind of hostile input a remote
 * party can put on a channel or stream the library reads. Deterministic for
 * a seed, so a failing run can be replayed.
 */
import { encodeFrame, MsgpackCodec } from '../../src/envelope/codec';

/** A small seeded generator (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const codec = new MsgpackCodec();

/** Valid frames of each kind the library reads, to be mutated. */
const SAMPLES: Buffer[] = [
  encodeFrame(codec, [{ headers: { name: 'chaos.events', createdAt: new Date(0).toISOString(), serviceName: 'fuzz' }, payloads: [{ src: 'fuzz', seq: 1 }] }]),
  encodeFrame(codec, [{ headers: { serviceNameSource: 'fuzz', sourceInstance: 'fuzz-1' }, payloads: [{ queryId: 'q1', action: 'echo', query: [1], timeout_ms: 1000 }] }]),
  encodeFrame(codec, [{ queryId: 'q1', result: 1 }]),
  encodeFrame(codec, [
    { queryId: 'x', serviceNameSource: 'fuzz', serviceNameDest: 's', route: 'redis', type: 'FIRE_AND_FORGET', action: 'work', query: {}, response: null, result: null, state: 'PENDING', query_ts: '', response_ts: '', query_ms: 0, timeout_ms: 0, processAttempts: 0 },
  ]),
];

export type Mutation = 'random-bytes' | 'truncated' | 'record-definition' | 'deep-nesting' | 'huge-length' | 'prototype-keys' | 'wrong-types' | 'bit-flip';
export const MUTATIONS: Mutation[] = ['random-bytes', 'truncated', 'record-definition', 'deep-nesting', 'huge-length', 'prototype-keys', 'wrong-types', 'bit-flip'];

/** One hostile frame of the given kind. */
export function mutate(kind: Mutation, next: () => number): Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const sample = pick(SAMPLES);
  switch (kind) {
    case 'random-bytes':
      return Buffer.from(Array.from({ length: 1 + Math.floor(next() * 64) }, () => Math.floor(next() * 256)));
    case 'truncated':
      return sample.subarray(0, Math.floor(next() * sample.length));
    case 'record-definition':
      // msgpackr's record extension (0x72): a structure definition that tries to redefine slots for what follows
      return Buffer.concat([Buffer.from([0xd4, 0x72, 0x40 + Math.floor(next() * 32)]), Buffer.from([0x93, 0xa1, 0x61, 0xa1, 0x62, 0xa1, 0x63]), sample]);
    case 'deep-nesting': {
      const depth = 1000 + Math.floor(next() * 100_000);
      return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from([0xc0])]);
    }
    case 'huge-length':
      // array32 / map32 / str32 / bin32 declaring billions of elements or bytes, with a few bytes behind
      return Buffer.concat([Buffer.from([pick([0xdd, 0xdf, 0xdb, 0xc6]), 0xff, 0xff, 0xff, 0xf0]), Buffer.from([1, 2, 3])]);
    case 'prototype-keys':
      return encodeFrame(codec, [JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"queryId":"p","headers":{"__proto__":{"x":1}},"payloads":[1]}')]);
    case 'wrong-types':
      return encodeFrame(codec, [
        pick([
          { headers: 42, payloads: 'not an array' },
          { headers: { serviceNameSource: 1, sourceInstance: [] }, payloads: [{ queryId: 5, action: {}, query: 'x', timeout_ms: -1 }] },
          { queryId: null, result: 1 },
          { queryId: 'q', error: 'string instead of object', instanceId: 7 },
          { cancel: 12 },
          [1, 2, 3],
          'a string frame',
        ]),
      ]);
    case 'bit-flip': {
      const copy = Buffer.from(sample);
      for (let i = 0; i < 1 + Math.floor(next() * 4); i++) copy[Math.floor(next() * copy.length)] ^= 1 << Math.floor(next() * 8);
      return copy;
    }
  }
}
