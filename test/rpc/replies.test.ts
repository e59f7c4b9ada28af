/**
 * A reply is the only copy of a call's outcome: the handler ran, and sending
 * the request again would run it twice. These tests take the caller's reply
 * subscription away at the moment its reply is published, on one real
 * Redis (the same on a cluster, where the caller's slot moves or its master
 * fails over: test/route/failover.test.ts), and check that the reply is
 * published again until the caller hears it, and no longer than its
 * deadline.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { PayloadTooLargeError, PermissionError, RedisUnavailableError, TimeoutError, ValidationError } from '../../src/errors/index';
import { MsgpackCodec, PROTOCOL_VERSION } from '../../src/envelope/codec';
import { ReplyResender, type Resendable } from '../../src/rpc/ReplyResender';
import { rejection, until } from '../support/async';
import { useRedis } from '../support/redis-server';

describe('RPC replies published again until their caller hears them', function () {
  this.timeout(20_000);
  const redis = useRedis({ private: true });
  let admin: Redis;
  const open: RedisRPCClient[] = [];

  beforeEach(async () => {
    admin = new Redis(redis().url, { lazyConnect: true });
    await admin.connect();
  });

  afterEach(async () => {
    await Promise.all(spinning.splice(0));
    await Promise.all(open.splice(0).map((client) => client.close()));
    await admin.config('SET', 'busy-reply-threshold', '5000');
    admin.disconnect();
  });

  async function pair(callerTimeoutMs: number): Promise<{ server: RedisRPCClient; caller: RedisRPCClient }> {
    const { url, namespace } = redis();
    const server = new RedisRPCClient({ service: 'calc', redis: url, namespace });
    const caller = new RedisRPCClient({ service: 'front', redis: url, namespace, timeoutMs: callerTimeoutMs });
    open.push(server, caller);
    await Promise.all([server.connect(), caller.connect()]);
    return { server, caller };
  }

  /**
   * Makes Redis answer BUSY to every other command for about `ms`: a script
   * spins past `busy-reply-threshold`. Resolves once a PING is refused.
   */
  async function busyFor(ms: number): Promise<void> {
    await admin.config('SET', 'busy-reply-threshold', '20');
    const spinner = new Redis(redis().url, { lazyConnect: true });
    await spinner.connect();
    const spin = spinner.eval(`local t = redis.call('TIME'); local stop = t[1] * 1000000 + t[2] + ${ms * 1000}; repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop; return 1`, 0);
    void spin.finally(() => spinner.disconnect());
    spinning.push(spin);
    await until(async () => (await admin.ping().catch((error: Error) => error.message)).startsWith('BUSY'), 5000, 'Redis to answer BUSY');
  }
  const spinning: Promise<unknown>[] = [];

  it('a result whose publish Redis refuses for a while (BUSY) is published again once it takes it: the handler runs once, the call succeeds (it was told as a RemoteError ERR_REDIS_UNAVAILABLE)', async () => {
    const { server, caller } = await pair(5000);
    let runs = 0;
    await server.expose<[number]>('inc', async ([n]) => {
      runs += 1;
      await busyFor(400); // the reply's publish is refused (BUSY) for the next 400 ms
      return n + 1;
    });
    expect(await caller.callService<number>('calc', 'inc', 41)).to.equal(42);
    expect(runs).to.equal(1);
    expect(server.stats().repliesResent, 'published again at least once').to.be.at.least(1);
  });

  it('an error reply is published again the same way: the caller gets the handler’s error, not ERR_REDIS_UNAVAILABLE', async () => {
    const { server, caller } = await pair(5000);
    await server.expose('fail', async () => {
      await busyFor(400);
      throw new Error('refused by the handler');
    });
    const error = await rejection(caller.callService('calc', 'fail'));
    expect(error.name).to.equal('RemoteError');
    expect(error.message).to.contain('refused by the handler');
    expect(server.stats().repliesResent).to.be.at.least(1);
  });

  it('a request Redis refuses before running it (BUSY) is sent again while the deadline allows: the call succeeds once Redis takes it, its handler run once', async () => {
    const { server, caller } = await pair(5000);
    let runs = 0;
    await server.expose<[number]>('inc', ([n]) => {
      runs += 1;
      return n + 1;
    });
    expect(await caller.callService<number>('calc', 'inc', 1), 'a first call: the instance known and heard from').to.equal(2);
    await busyFor(300);
    expect(await caller.callService<number>('calc', 'inc', 41)).to.equal(42);
    expect(runs).to.equal(2);
  });

  it('a reply whose caller left is published again only until the call’s deadline, then given up', async () => {
    const { server, caller } = await pair(400);
    let release: () => void = () => undefined;
    const callerGone = new Promise<void>((resolve) => (release = resolve));
    let handledAt = 0;
    await server.expose('slow', async () => {
      await callerGone;
      handledAt = Date.now();
      return 'late';
    });
    const call = caller.callService('calc', 'slow');
    expect(await rejection(call)).to.be.instanceOf(TimeoutError);
    await caller.close();
    release();
    await until(() => handledAt > 0, 5000, 'the handler to return');
    // the deadline (400 ms from the request's arrival) has passed already: at most one publish, none again
    const resentAtDeadline = server.stats().repliesResent;
    expect(resentAtDeadline).to.be.at.most(1);
    await new Promise((resolve) => setTimeout(resolve, 300)); // what must not happen has no event to await: longer than two pauses
    expect(server.stats().repliesResent, 'nothing published after the deadline').to.equal(resentAtDeadline);
  });

  it('a reply to a caller that left within its deadline is published a bounded number of times (pauses doubling), then given up', async () => {
    const { server, caller } = await pair(1500);
    let release: () => void = () => undefined;
    const callerGone = new Promise<void>((resolve) => (release = resolve));
    let started: () => void = () => undefined;
    const handling = new Promise<void>((resolve) => (started = resolve));
    await server.expose('slow', async () => {
      started();
      await callerGone;
      return 'unheard';
    });
    const call = caller.callService('calc', 'slow').catch((error: unknown) => error);
    await handling;
    await caller.close(); // its pending call is rejected; its reply channel unsubscribed
    await call;
    const closedAt = Date.now();
    release();
    // 25, 50, 100, 200, 400 ms pauses fit in the ~1.5 s left; the next (800 ms) would pass the deadline. What must
    // not happen (more publishes) has no event to await: wait past the deadline.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1700 - (Date.now() - closedAt))));
    const resent = server.stats().repliesResent;
    expect(resent, 'published again while the caller could still be listening').to.be.within(3, 6);
  });
});

describe('ReplyResender: how far a reply is published again', () => {
  interface Job extends Resendable {
    name: string;
  }
  const job = (name: string, replyTo = `reply.${name}`): Job => ({ name, replyTo, reply: { queryId: name }, replyAttempts: 0, replyUntil: 0, replyTimer: undefined });
  const limits = { firstPauseMs: 5, longestPauseMs: 20, windowMs: 150, maxWaiting: 2, maxPerCaller: 2 };

  /** A resender whose every publish reaches nobody; `posts` counts them per job. */
  function toNobody(): { resender: ReplyResender<Job>; posts: Map<string, number>; counters: { repliesResent: number } } {
    const posts = new Map<string, number>();
    const counters = { repliesResent: 0 };
    const resender: ReplyResender<Job> = new ReplyResender<Job>(
      (again) => {
        posts.set(again.name, (posts.get(again.name) ?? 0) + 1);
        setImmediate(() => resender.retry(again, undefined, 0));
      },
      counters,
      limits,
    );
    return { resender, posts, counters };
  }

  it('a request that states a deadline a year away (a forged one, a caller that never listens): published again only within the window, pauses doubling', async () => {
    const { resender, posts, counters } = toNobody();
    const forged = job('forged');
    resender.start(forged, forged.reply as object, Date.now() + 365 * 24 * 3600_000);
    const startedAt = Date.now();
    expect(resender.retry(forged, undefined, 0)).to.equal(true);
    await until(() => resender.size === 0, 2000, 'the window to close');
    expect(Date.now() - startedAt, 'given up once the window (150 ms) is over').to.be.below(400);
    // pauses 5, 10, 20, 20, ... within 150 ms: at most 2 + 150 / 20 publishes; at least two (published again after
    // the first), fewer than the pauses allow when a loaded machine runs the timers late
    expect(posts.get('forged')).to.be.within(2, 10);
    expect(counters.repliesResent).to.equal(posts.get('forged'));
    await new Promise((resolve) => setTimeout(resolve, 60)); // nothing left to await: three pauses' time
    expect(counters.repliesResent, 'nothing after the window').to.equal(posts.get('forged'));
  });

  it('at most maxWaiting replies wait at once: one more gives up the one that waited longest, so that a flood of replies to callers that never listen cannot shut out a caller that comes back', async () => {
    const { resender, posts } = toNobody();
    const jobs = ['flood-1', 'flood-2', 'real'].map((name) => job(name));
    for (const j of jobs) resender.start(j, j.reply as object, Date.now() + 10_000);
    expect(jobs.map((j) => resender.retry(j, undefined, 0))).to.deep.equal([true, true, true]);
    expect(resender.size).to.equal(2);
    await until(() => (posts.get('real') ?? 0) > 0, 2000, 'the newest reply published again');
    expect(posts.get('flood-1'), 'the oldest given up').to.equal(undefined);
    resender.close();
  });

  it('at most maxPerCaller replies to one caller wait at once; one more to that caller is given up, not another caller\'s', () => {
    const { resender } = toNobody();
    const jobs = [job('a', 'reply.gone'), job('b', 'reply.gone'), job('c', 'reply.gone'), job('d', 'reply.back')];
    for (const j of jobs) resender.start(j, j.reply as object, Date.now() + 10_000);
    const limited = new ReplyResender<Job>(() => undefined, { repliesResent: 0 }, { ...limits, maxWaiting: 10 });
    expect(jobs.map((j) => limited.retry(j, undefined, 0))).to.deep.equal([true, true, false, true]);
    expect(limited.close()).to.equal(3);
    resender.close();
  });

  it('only an outage or a reply to nobody is published again: a delivered reply, a refusal by the ACL or a too-large reply are final; nothing after close()', () => {
    const { resender } = toNobody();
    const j = job('x');
    resender.start(j, j.reply as object, Date.now() + 10_000);
    expect(resender.retry(j, undefined, 1), 'delivered').to.equal(false);
    expect(resender.retry(j, new PermissionError('publish to "x"', 'NOPERM'), undefined), 'refused by the ACL').to.equal(false);
    expect(resender.retry(j, new PayloadTooLargeError('reply', 2_000_000, 1_000_000), undefined), 'too large').to.equal(false);
    expect(resender.retry(j, new RedisUnavailableError('publish to "x"', 'CLUSTERDOWN', { applied: false }), undefined), 'Redis away').to.equal(true);
    expect(resender.close()).to.equal(1);
    expect(resender.retry(j, undefined, 0), 'after close').to.equal(false);
  });
});

describe('call timeouts no Node.js timer can wait', function () {
  this.timeout(20_000);
  const redis = useRedis();

  it('a timeoutMs above 2147483647 ms is refused with a ValidationError naming it, as an option and per call; a request stating one is kept at that bound, with no timer firing every millisecond', async () => {
    const { url, namespace } = redis();
    expect(() => new RedisRPCClient({ service: 'front', redis: url, namespace, timeoutMs: 2 ** 31 })).to.throw(ValidationError, /^timeoutMs must be at most 2147483647 ms \(the longest Node.js timer\); received 2147483648$/);
    const server = new RedisRPCClient({ service: 'calc', redis: url, namespace });
    const caller = new RedisRPCClient({ service: 'front', redis: url, namespace });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      await Promise.all([server.connect(), caller.connect()]);
      let remaining = 0;
      await server.expose('slow', async (_args, context) => {
        remaining = context.deadline - Date.now();
        void context.signal; // arms the handler's deadline timer
        await new Promise((resolve) => setTimeout(resolve, 30));
        return 'done';
      });
      expect(() => caller.with({ timeoutMs: 1e12 })).to.throw(ValidationError, /^timeoutMs \(call option\) must be at most 2147483647 ms/);
      // a foreign caller states 1e12 ms: the server keeps the longest timer's wait
      const names = server.client.names;
      const raw = new Redis(url, { lazyConnect: true });
      const listener = new Redis(url, { lazyConnect: true });
      await Promise.all([raw.connect(), listener.connect()]);
      const answered = new Promise<void>((resolve) => listener.on('messageBuffer', () => resolve()));
      await listener.subscribe(names.rpcReplies('py', 'p1', 'calc'));
      const request = { queryId: 'q1', serviceNameSource: 'py', sourceInstance: 'p1', action: 'slow', query: [], timeout_ms: 1e12 };
      await raw.publish(names.rpcInstance('service.calc.rpc', server.instanceId), new MsgpackCodec().encode([PROTOCOL_VERSION, request]));
      await answered;
      raw.disconnect();
      listener.disconnect();
      expect(remaining, 'the deadline kept').to.be.at.most(2_147_483_647).and.above(2_147_000_000);
      expect(warnings, 'no TimeoutOverflowWarning').to.not.include('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
      await Promise.all([server.close(), caller.close()]);
    }
  });
});
