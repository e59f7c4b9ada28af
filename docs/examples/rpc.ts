/**
 * RPC between two services: `users` declares and serves its functions,
 * `web` calls them with types from the same declaration, and every way a
 * call can fail is its own error class.
 *
 * Run: `REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/rpc.ts`
 * (without REDIS_URL it runs on the memory route). @runs-without-redis
 */
import { defineFunctions, schema, NoHandlerError, RemoteError, RedisRPCClient, TimeoutError } from 'intracom';

/** The catalogue entry of the `users` service's functions: shared by its callers and itself. */
export const Users = defineFunctions(
  { service: 'users' },
  {
    online_users: { args: [], result: schema.array(schema.string()), description: 'Uuids of the users online now' },
    update_status: {
      args: [schema.string(), schema.literal('online'), schema.integer()],
      result: schema.boolean(),
      idempotent: true,
      description: 'Marks a user online at a timestamp',
    },
  },
);

export async function main(redisUrl = process.env.REDIS_URL): Promise<string[]> {
  const transcript: string[] = [];
  const say = (line: string): void => {
    transcript.push(line);
    console.log(line);
  };
  const connection = redisUrl ? { redis: redisUrl } : { route: 'memory' as const };
  say(`route: ${redisUrl ? 'redis' : 'memory'}`);

  const online = new Set<string>();
  const users = new RedisRPCClient({ service: 'users', ...connection });
  await users.implement(Users, {
    online_users: () => [...online],
    update_status: ([uuid, , timestamp], context) => {
      online.add(uuid);
      say(`users: ${uuid} online at ${timestamp}, asked by ${context.callerService}`);
      return true;
    },
  });
  await users.expose('slow_report', () => new Promise((resolve) => setTimeout(() => resolve('report'), 1000)));
  await users.expose('explode', () => {
    throw Object.assign(new Error('database unavailable'), { code: 'E_DB' });
  });
  await users.connect();

  const web = new RedisRPCClient({ service: 'web', ...connection, timeoutMs: 5000 });
  await web.connect();
  try {
    const updated: boolean = await web.callService(Users, 'update_status', 'u-1', 'online', 1_700_000_000);
    say(`web: update_status -> ${updated}`);
    say(`web: online_users -> ${JSON.stringify(await web.callService(Users, 'online_users'))}`);
    const described = await web.describeService('users');
    say(`web: users exposes ${described.functions.map((f) => f.name).join(', ')}`);

    for (const attempt of [
      () => web.callService('users', 'no_such_function'),
      () => web.callService('users', 'explode'),
      () => web.with({ timeoutMs: 200 }).callService('users', 'slow_report'),
    ]) {
      try {
        await attempt();
      } catch (error) {
        if (error instanceof NoHandlerError) say(`web: NoHandlerError (${error.available.length} functions exist)`);
        else if (error instanceof RemoteError) say(`web: RemoteError ${error.remoteName} ${error.remoteCode}: ${error.remoteMessage}`);
        else if (error instanceof TimeoutError) say(`web: TimeoutError after ${error.timeoutMs} ms`);
        else throw error;
      }
    }
  } finally {
    await web.close();
    await users.close();
  }
  return transcript;
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
