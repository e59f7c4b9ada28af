/**
 * A command the ACL refuses after connect (a channel or a command left out
 * of a restricted, hand-written ACL user) rejects with PermissionError naming
 * what was refused, the server's NOPERM as `cause`: publish, subscribe and
 * psubscribe on RedisClient; calls and SYNC/ASYNC queries (whose requests are
 * publishes) and FIRE_AND_FORGET/BROADCAST (an XADD) on RedisRPCClient.
 * The refusal loses nothing else: traffic the ACL allows, sent in the same
 * tick or afterwards, goes through.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import pino from 'pino';
import { RedisClient } from '../../src/client/RedisClient';
import { PermissionError } from '../../src/errors/index';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';
import { rejection, until } from '../support/async';
import { startRedis, type TestRedis } from '../support/redis-server';

const quiet = pino({ level: 'silent' });

/** Asserts `error` is the PermissionError of `operation`, with Redis's NOPERM as cause. */
function refused(error: unknown, operation: RegExp): void {
  expect(error, String(error)).to.be.instanceOf(PermissionError);
  expect((error as PermissionError).operation).to.match(operation);
  expect(((error as Error).cause as Error).message).to.match(/^NOPERM/);
}

describe('commands an ACL refuses after connect: PermissionError naming the command, NOPERM as cause', function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let ns: string;
  let limitedUrl: string;
  let server: RedisRPCClient;
  const closing: Array<{ close(): Promise<void> }> = [];

  before(async () => {
    redis = await startRedis({ private: true });
    ns = redis.namespace;
    const admin = new Redis(redis.url);
    // written by hand for this test (not vars/acl.ts): its own service's channels and intracom's, every key of the
    // namespace, every command but XADD; the channels of the service "vault" and of topics "secret.*" are left out
    await admin.call('ACL', 'SETUSER', 'limited', 'on', '>pw', `~${ns}:*`, 'resetchannels', `&${ns}:intracom.*`, `&${ns}:service.caller.*`, `&${ns}:allowed.*`, '+@all', '-xadd');
    admin.disconnect();
    const url = new URL(redis.url);
    limitedUrl = `redis://limited:pw@${url.host}`;
    // the service called, on the default user
    server = new RedisRPCClient({ service: 'vault', redis: redis.url, namespace: ns, logger: quiet, queues: { blockMs: 100 } });
    await server.expose('open', () => 'opened');
    server.handle('job', () => 'done');
    await server.connect();
  });
  afterEach(async () => {
    for (const instance of closing.splice(0)) await instance.close();
  });
  after(async () => {
    await server.close();
    await redis.stop();
  });

  const limitedClient = async () => {
    const client = new RedisClient({ service: 'caller', redis: limitedUrl, namespace: ns, logger: quiet });
    closing.push(client);
    await client.connect();
    return client;
  };
  const limitedRpc = async () => {
    const rpc = new RedisRPCClient({ service: 'caller', redis: limitedUrl, namespace: ns, logger: quiet, timeoutMs: 3000 });
    closing.push(rpc);
    await rpc.connect();
    return rpc;
  };

  it('RedisClient.publish: refused, and an allowed publish of the same tick and a later one go through', async () => {
    const client = await limitedClient();
    const heard: unknown[] = [];
    await client.subscribe('allowed.news', (payload) => void heard.push(payload));
    const [forbidden, allowed] = await Promise.all([rejection(client.publish('secret.news', { n: 1 })), client.publish('allowed.news', { n: 1 })]);
    refused(forbidden, new RegExp(`^publish to "${ns}:secret\\.news"$`));
    expect(allowed).to.equal(1);
    expect(await client.publish('allowed.news', { n: 2 })).to.equal(1);
    await until(() => heard.length === 2, 5000, 'both allowed events');
  });

  it('RedisClient.subscribe and psubscribe: refused, every time, and allowed subscriptions still receive', async () => {
    const client = await limitedClient();
    refused(await rejection(client.subscribe('secret.news', () => undefined)), new RegExp(`^subscribe to "${ns}:secret\\.news"$`));
    refused(await rejection(client.psubscribe('secret.*', () => undefined)), new RegExp(`^psubscribe to "${ns}:secret\\.\\*"$`));
    // the refused subscription is not remembered as active
    refused(await rejection(client.subscribe('secret.news', () => undefined)), /subscribe to/);
    const heard: unknown[] = [];
    await client.subscribe('allowed.news', (payload) => void heard.push(payload));
    await client.publish('allowed.news', 'hello');
    await until(() => heard.length === 1, 5000, 'the allowed event');
  });

  it('RedisRPCClient.callService and the SYNC and ASYNC queries: refused (their request is a publish to the service)', async () => {
    const rpc = await limitedRpc();
    const channel = new RegExp(`^publish to "${ns}:service\\.\\{vault\\}\\.rpc`);
    refused(await rejection(rpc.callService('vault', 'open')), channel);
    refused(await rejection(rpc.sendSync('vault', 'job', {})), channel);
    const handle = rpc.sendAsync('vault', 'job', {});
    await handle.promise.catch(() => undefined);
    expect(handle.state).to.equal('ERROR');
    refused(handle.error, channel);
    expect(rpc.stats().inFlight).to.equal(0);
  });

  it('RedisRPCClient.fireAndForget and broadcast: refused (XADD), never reported as an outage', async () => {
    const rpc = await limitedRpc();
    refused(await rejection(rpc.fireAndForget('vault', 'job', { n: 1 })), /^append to .*\{vault\}:queries$/);
    refused(await rejection(rpc.broadcast('vault', 'job', { n: 1 })), /^append to .*\{vault\}:broadcast$/);
  });
});
