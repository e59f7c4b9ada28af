/**
 * Failover under traffic, on real processes: events, RPC calls and
 * FIRE_AND_FORGET queries flow while the master of the service's data is
 * SIGKILLed (a cluster master, the Sentinel master) or demoted
 * (`SENTINEL FAILOVER`, the old master staying up). The clients are never
 * restarted. What must hold: every RPC call settles (result or typed error)
 * within its timeout, calls and events come back after the failover, and
 * with `durability: { replicas: 1 }` no durable query whose send resolved is
 * lost. Without it the loss is measured and printed, not asserted (it is
 * what asynchronous replication gives; docs/operations.md has the figures).
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { IntracomError } from '../../src/errors/IntracomError';
import type { RedisRoute } from '../../src/route/RedisRoute';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import type { RedisRPCClientOptions } from '../../src/rpc/RedisRPCClientOptions';
import { serviceEvents } from '../../vars/names';
import { until } from '../support/async';
import { cluster, sentinel, topologiesAvailable, type TestSentinel, type TopologyNode } from '../support/redis-topologies';

const describeTopologies = topologiesAvailable && process.env.INTRACOM_TEST_TOPOLOGIES !== '0' ? describe : describe.skip;
const CALL_TIMEOUT_MS = 2500;
const TICK_MS = 20;
/** Traffic runs this long; the disruption comes at 500 ms (a failover takes 1-3 s here). */
const RUN_MS = 9000;

interface Outcome {
  calls: number;
  callsFailed: number;
  /** How the failed calls failed: error name and message, with counts. */
  callFailures: Record<string, number>;
  /** Longest time a call took to settle, ms. */
  slowestCallMs: number;
  /** Calls that settled after their timeout (must be 0). */
  lateCalls: number;
  /** Errors that were not IntracomErrors (must be 0). */
  untypedErrors: string[];
  /** From the disruption to the first call answered after it, ms. */
  callsBackAfterMs: number;
  eventsSent: number;
  eventsReceived: number;
  /** From the disruption to the first event received after it, ms. */
  eventsBackAfterMs: number;
  queriesAccepted: number;
  queriesRefused: number;
  queriesLost: number;
  /** The serving client's route status once the wait for unprocessed queries ended (a loss with `reconnecting` here is a client that never recovered, not lost data). */
  serverStatusAtEnd: string;
  /** Events sent in the last 2 s of the run (long after any disruption) that never arrived. */
  lateEventsMissed: number;
}

/** Runs traffic for `runMs`, disrupting at 500 ms, then counts. */
async function underTraffic(url: string, namespace: string, extra: Partial<RedisRPCClientOptions>, disrupt: () => Promise<void>, checkReady?: (client: RedisRPCClient) => Promise<void>, runMs = RUN_MS): Promise<Outcome> {
  const base = { redis: url, namespace, registry: { heartbeatMs: 200, ttlMs: 3000 }, queues: { visibilityTimeoutMs: 1500, blockMs: 100 }, timeoutMs: CALL_TIMEOUT_MS, ...extra } as RedisRPCClientOptions;
  const server = new RedisRPCClient({ ...base, service: 'calc' } as RedisRPCClientOptions);
  const caller = new RedisRPCClient({ ...base, service: 'front' } as RedisRPCClientOptions);
  server.client.on('error', () => undefined);
  caller.client.on('error', () => undefined);
  const readyChecks: Promise<void>[] = [];
  if (checkReady) server.client.on('ready', () => readyChecks.push(checkReady(server)));
  await Promise.all([server.connect(), caller.connect()]);
  const processed = new Set<number>();
  server.handle('note', ({ i }: { i: number }) => void processed.add(i));
  await server.expose<[number]>('inc', ([n]) => n + 1);
  const received: number[] = [];
  const sentAtOf = new Map<number, number>();
  let disruptedAt = Number.POSITIVE_INFINITY;
  let eventsBackAt = Number.POSITIVE_INFINITY;
  let callsBackAt = Number.POSITIVE_INFINITY;
  await server.client.subscribe(serviceEvents('calc'), (payload) => {
    received.push((payload as { i: number }).i);
    if (Date.now() > disruptedAt + 50 && eventsBackAt === Number.POSITIVE_INFINITY) eventsBackAt = Date.now();
  });
  const outcome: Outcome = { calls: 0, callsFailed: 0, callFailures: {}, slowestCallMs: 0, lateCalls: 0, untypedErrors: [], callsBackAfterMs: 0, eventsSent: 0, eventsReceived: 0, eventsBackAfterMs: 0, queriesAccepted: 0, queriesRefused: 0, queriesLost: 0, serverStatusAtEnd: '', lateEventsMissed: 0 };
  const accepted = new Set<number>();
  const inflight: Promise<void>[] = [];
  const started = Date.now();
  let disruption: Promise<void> | undefined;
  const typed = (what: string) => (error: unknown) => {
    if (!(error instanceof IntracomError)) outcome.untypedErrors.push(`${what}: ${String(error)}`);
  };
  for (let i = 0; ; i++) {
    const now = Date.now();
    if (disruption === undefined && now - started > 500) {
      disruptedAt = now;
      disruption = disrupt();
    }
    if (now - started > runMs) break;
    outcome.eventsSent += 1;
    sentAtOf.set(i, Date.now());
    inflight.push(caller.client.publish(serviceEvents('calc'), { i }).then(() => undefined, typed('publish')));
    const sentAt = Date.now();
    outcome.calls += 1;
    inflight.push(
      caller.callService<number>('calc', 'inc', i).then(
        () => {
          if (sentAt > disruptedAt && callsBackAt === Number.POSITIVE_INFINITY) callsBackAt = Date.now();
        },
        (error: unknown) => {
          outcome.callsFailed += 1;
          const reason = error instanceof Error ? `${error.name}: ${error.message.slice(0, 120)}` : String(error);
          outcome.callFailures[reason] = (outcome.callFailures[reason] ?? 0) + 1;
          typed('call')(error);
        },
      ).finally(() => {
        const took = Date.now() - sentAt;
        outcome.slowestCallMs = Math.max(outcome.slowestCallMs, took);
        if (took > CALL_TIMEOUT_MS + 500) outcome.lateCalls += 1; // the timer's own lateness on a loaded machine
      }),
    );
    inflight.push(
      caller.fireAndForget('calc', 'note', { i }).then(
        () => void accepted.add(i),
        (error: unknown) => {
          outcome.queriesRefused += 1;
          typed('fireAndForget')(error);
        },
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
  await disruption;
  await Promise.all(inflight);
  await until(() => [...accepted].every((i) => processed.has(i)), 15_000).catch(() => undefined);
  await Promise.all(readyChecks);
  outcome.serverStatusAtEnd = server.client.route.status;
  outcome.queriesAccepted = accepted.size;
  outcome.queriesLost = [...accepted].filter((i) => !processed.has(i)).length;
  outcome.eventsReceived = received.length;
  const got = new Set(received);
  outcome.lateEventsMissed = [...sentAtOf].filter(([i, at]) => at > started + runMs - 2000 && !got.has(i)).length;
  outcome.callsBackAfterMs = callsBackAt - disruptedAt;
  outcome.eventsBackAfterMs = eventsBackAt - disruptedAt;
  await Promise.all([server.close(), caller.close()]);
  return outcome;
}

function check(outcome: Outcome, durable: boolean): void {
  expect(outcome.untypedErrors, 'every failure is a typed error').to.deep.equal([]);
  expect(outcome.lateCalls, 'every call settles within its timeout').to.equal(0);
  expect(outcome.callsBackAfterMs, 'calls come back without a restart').to.be.below(RUN_MS);
  expect(outcome.eventsBackAfterMs, 'events come back without a restart').to.be.below(RUN_MS);
  if (durable) expect(outcome.queriesLost, 'no durable query lost with durability.replicas = 1').to.equal(0);
}

function report(label: string, outcome: Outcome): void {
  if (process.env.INTRACOM_FAILOVER_REPORT) console.log(JSON.stringify({ failover: label, ...outcome }));
}

/** At each `ready` of a client: is its subscriber on the master the sentinels name? Mismatches go to `wrong`. */
function readyOnMaster(s: TestSentinel, wrong: string[]): (client: RedisRPCClient) => Promise<void> {
  return async (client) => {
    const route = client.client.route as RedisRoute;
    const subscribedTo = (route.subscriber as Redis).stream?.remotePort;
    const master = await s.master().catch(() => undefined);
    if (master !== undefined && subscribedTo !== master.port) wrong.push(`ready with the subscriber on ${subscribedTo}, master ${master.port}`);
  };
}

describeTopologies('failover under traffic', function () {
  this.timeout(90_000);

  for (const durable of [true, false]) {
    it(`cluster: a master SIGKILLed, its replica promoted; ${durable ? 'durability.replicas = 1 loses no durable query' : 'without durability the loss is measured'}`, async () => {
      const c = await cluster();
      await c.heal();
      const namespace = c.namespace();
      let victim: TopologyNode | undefined;
      const outcome = await underTraffic(c.url, namespace, durable ? { durability: { replicas: 1, timeoutMs: 1000 } } : {}, async () => {
        victim = await c.masterOf(`${namespace}:ic:{calc}:queries`);
        await victim.kill();
      });
      report(`cluster${durable ? ' durable' : ''}`, outcome);
      expect(victim?.alive).to.equal(false);
      check(outcome, durable);
      await c.heal();
    });
  }

  for (const durable of [true, false]) {
    it(`sentinel: the master SIGKILLed, the replica promoted; ${durable ? 'durability.replicas = 1 loses no durable query' : 'without durability the loss is measured'}`, async () => {
      const s = await sentinel();
      await s.heal();
      const wrongReady: string[] = [];
      const outcome = await underTraffic(
        s.url,
        s.namespace(),
        durable ? { durability: { replicas: 1, timeoutMs: 1000 } } : {},
        async () => {
          await (await s.master()).kill();
        },
        readyOnMaster(s, wrongReady),
      );
      report(`sentinel kill${durable ? ' durable' : ''}`, outcome);
      check(outcome, durable);
      expect(wrongReady, 'ready only once subscribed on the master the sentinels name').to.deep.equal([]);
      await s.heal();
    });
  }

  // `true` (the source gives the slot up 300 ms before the target claims it) is left out of the suite: in 1 of 4 runs the
  // shard subscription never came back (docs/operations.md, Slot migrations: open). INTRACOM_TEST_SOURCE_FIRST=1 runs it.
  for (const sourceFirst of process.env.INTRACOM_TEST_SOURCE_FIRST === '1' ? [false, true] : [false]) {
    it(`cluster: the slot of the service (its shard channels, streams and keys) migrated to another master mid-traffic${sourceFirst ? ', given up by the source before the target claims it' : ''}; subscriptions follow, nothing durable is lost, ${sourceFirst ? 'every call settles' : 'every call succeeds'}`, async () => {
      const c = await cluster();
      await c.heal();
      const namespace = c.namespace();
      const key = `${namespace}:ic:{calc}:queries`;
      let moved: { from: TopologyNode; to: TopologyNode } | undefined;
      // a migration takes well under a second here; source first, the subscription may wait up to one 2 s slot-map reading
      const outcome = await underTraffic(c.url, namespace, {}, async () => {
        moved = await c.migrateSlot(key, { sourceFirst });
      }, undefined, sourceFirst ? 6500 : 4500);
      report(`cluster slot migration${sourceFirst ? ' source first' : ''}`, outcome);
      expect((await c.masterOf(key)).port, 'the slot is on the target master').to.equal(moved?.to.port);
      check(outcome, true);
      if (sourceFirst) {
        // While nobody owns the slot (300 ms) commands bounce between the two masters, then the
        // subscriber's periodic slot-map reading is what finds the new owner: failures there are typed (checked above).
        expect(outcome.callsBackAfterMs, 'calls come back').to.be.below(RUN_MS);
      } else {
        expect(outcome.callFailures, 'no call fails: a migration is no outage').to.deep.equal({});
        expect(outcome.queriesRefused, 'no query is refused').to.equal(0);
      }
      expect(outcome.lateEventsMissed, 'events sent after the migration all arrive: the shard subscription followed the slot').to.equal(0);
      await c.migrateSlot(key, { to: moved?.from });
    });
  }

  it('sentinel: SENTINEL FAILOVER with the old master still up; ready is never reported while subscribed on the old master', async () => {
    const s = await sentinel();
    await s.heal();
    const wrongReady: string[] = [];
    const outcome = await underTraffic(
      s.url,
      s.namespace(),
      { durability: { replicas: 1, timeoutMs: 1000 } },
      async () => {
        const probe = new Redis({ port: s.sentinels[0].port, lazyConnect: true });
        await probe.connect();
        await probe.call('SENTINEL', 'FAILOVER', s.name);
        probe.disconnect();
      },
      readyOnMaster(s, wrongReady),
    );
    report('sentinel manual', outcome);
    check(outcome, true);
    expect(wrongReady).to.deep.equal([]);
    await s.heal();
  });
});
