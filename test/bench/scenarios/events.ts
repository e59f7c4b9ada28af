/**
 * Scenario `events`: events per second from a publisher process to a
 * subscriber process, one pair per system, all pairs alive at once, the
 * systems' rounds alternating. Systems: `baseline` (one ioredis PUBLISH per
 * event), `control` (the baseline's code again, in processes of its own: how
 * far ratios move by noise alone), `autopipelining` (the baseline with ioredis
 * `enableAutoPipelining`), `reference` (the issue's hand-written coalescing
 * design: one msgpackr-records array frame per channel and tick),
 * `intracom` (RedisClient.publishAndForget/subscribe) and `intracom-publish`
 * (RedisClient.publish, a promise per event, not awaited). Every system runs under the
 * same credit flow control (at most 20,000 events sent and not yet
 * received), so nothing is dropped: `lost` = sent - received must be 0.
 *
 * Arrangements (one result line per system and arrangement, the scenario
 * named after the arrangement): payloads of about 100 B and 1 KB; 1 s and
 * 8 s of warm-up; the subscriber holding 1 subscription, or 10,001 (10,000
 * idle topics beside the measured one).
 */
import { performance } from 'node:perf_hooks';
import { spawnPeer, type Peer } from '../../support/processes';
import { result, selectedSystems, stopPeers, type BenchContext, type BenchResult, type Scenario } from '../harness';

type System = 'baseline' | 'control' | 'autopipelining' | 'reference' | 'intracom' | 'intracom-publish' | 'intracom-signed' | 'intracom-sealed';
const SYSTEMS = selectedSystems<System>(['baseline', 'control', 'autopipelining', 'reference', 'intracom', 'intracom-publish', 'intracom-signed', 'intracom-sealed']);
const ROUNDS = 3;
const ROUND_MS = 1_000;

interface Arrangement {
  payloadBytes: number;
  warmUpMs: number;
  extraTopics: number;
}

/** Every arrangement; `quick` ones also run under BENCH_QUICK=1. */
const ARRANGEMENTS: ReadonlyArray<Arrangement & { quick?: true }> = [
  { payloadBytes: 100, warmUpMs: 1_000, extraTopics: 0, quick: true },
  { payloadBytes: 1_000, warmUpMs: 1_000, extraTopics: 0 },
  { payloadBytes: 100, warmUpMs: 1_000, extraTopics: 10_000 },
  { payloadBytes: 100, warmUpMs: 8_000, extraTopics: 0 },
];

/** The scenario name of an arrangement, as the result lines carry it. */
function label(a: Arrangement): string {
  return `events ${a.payloadBytes >= 1000 ? `${a.payloadBytes / 1000}KB` : `${a.payloadBytes}B`} warm${a.warmUpMs / 1000}s topics${a.extraTopics + 1}`;
}

interface Pair {
  publisher: Peer;
  subscriber: Peer;
}

interface Sample {
  sent: number;
  received: number;
  elapsedMs: number;
  latencies: number[];
  cpuMs: { publisher: number; subscriber: number };
}

async function startPairs(context: BenchContext, arrangement: Arrangement, started: Peer[]): Promise<Record<System, Pair>> {
  const pairs = {} as Record<System, Pair>;
  for (const system of SYSTEMS) {
    const env = {
      BENCH_SYSTEM: system,
      BENCH_REDIS_URL: context.redisUrl,
      BENCH_NAMESPACE: context.namespace,
      BENCH_TOPIC: `bench.events.${system}`,
      BENCH_PAYLOAD_BYTES: String(arrangement.payloadBytes),
      BENCH_EXTRA_TOPICS: String(arrangement.extraTopics),
    };
    const subscriber = spawnPeer('test/bench/peers/events-subscriber.ts', env);
    started.push(subscriber);
    await subscriber.next((m: { ev: string }) => m.ev === 'ready', 120_000);
    const publisher = spawnPeer('test/bench/peers/events-publisher.ts', env);
    started.push(publisher);
    await publisher.next((m: { ev: string }) => m.ev === 'ready', 60_000);
    // the subscriber's progress is the publisher's credit
    subscriber.child.on('message', (m: { ev: string; received?: number }) => {
      if (m.ev === 'progress' || m.ev === 'finished') publisher.send({ cmd: 'credit', received: m.received });
    });
    pairs[system] = { publisher, subscriber };
  }
  return pairs;
}

/** Publishes for `ms`, then waits until the subscriber has everything sent so far (or gives up: lost). */
async function round(pair: Pair, ms: number, before: { sent: number; received: number }): Promise<Sample> {
  const began = performance.now();
  const ran = await pair.publisher.ask<{ sent: number; elapsedMs: number; cpuMs: number }>({ cmd: 'run', ms }, 'ran', 120_000);
  const finished = await pair.subscriber.ask<{ received: number; latencies: number[]; cpuMs: number }>({ cmd: 'expect', total: ran.sent }, 'finished', 60_000);
  return {
    sent: ran.sent - before.sent,
    received: finished.received - before.received,
    // from the start of publishing to the last event received (the orchestrator's clock)
    elapsedMs: performance.now() - began,
    latencies: finished.latencies,
    cpuMs: { publisher: ran.cpuMs, subscriber: finished.cpuMs },
  };
}

async function measure(context: BenchContext, arrangement: Arrangement): Promise<BenchResult[]> {
  const started: Peer[] = [];
  try {
    const pairs = await startPairs(context, arrangement, started);
    const totals = Object.fromEntries(SYSTEMS.map((system) => [system, { sent: 0, received: 0 }])) as Record<System, { sent: number; received: number }>;
    const advance = (system: System, sample: Sample) => {
      totals[system].sent += sample.sent;
      totals[system].received += sample.received;
    };
    for (const system of SYSTEMS) advance(system, await round(pairs[system], arrangement.warmUpMs * Math.max(context.scale, 0.25), totals[system]));
    const samples = Object.fromEntries(SYSTEMS.map((system) => [system, [] as Sample[]])) as Record<System, Sample[]>;
    for (let r = 0; r < ROUNDS; r++) {
      for (const system of SYSTEMS) {
        const sample = await round(pairs[system], Math.max(300, ROUND_MS * context.scale), totals[system]);
        advance(system, sample);
        samples[system].push(sample);
      }
    }
    return SYSTEMS.map((system) => {
      const runs = samples[system];
      const sent = runs.reduce((sum, r) => sum + r.sent, 0);
      const received = runs.reduce((sum, r) => sum + r.received, 0);
      const perEvent = (side: keyof Sample['cpuMs']) => Math.round((runs.reduce((sum, r) => sum + r.cpuMs[side], 0) * 1000 * 100) / Math.max(1, received)) / 100;
      return result(label(arrangement), system, received, runs.reduce((sum, r) => sum + r.elapsedMs, 0), runs.flatMap((r) => r.latencies), {
        payload_bytes: arrangement.payloadBytes,
        warm_up_ms: arrangement.warmUpMs,
        subscriptions: arrangement.extraTopics + 1,
        sent,
        received,
        lost: sent - received,
        cpu_us_publisher: perEvent('publisher'),
        cpu_us_subscriber: perEvent('subscriber'),
      });
    });
  } finally {
    await stopPeers(started);
  }
}

export const scenario: Scenario = {
  name: 'events',
  async run(context) {
    const results: BenchResult[] = [];
    for (const arrangement of ARRANGEMENTS) if (context.scale >= 1 || arrangement.quick) results.push(...(await measure(context, arrangement)));
    return results;
  },
};
