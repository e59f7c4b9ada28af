/**
 * Two services exchanging typed variables and events: the foundation's main
 * job in one file. Runs on the embedded memory route by default; give it a
 * Redis URL (argument or REDIS_URL) to go through Redis instead.
 *
 *   npx tsx docs/examples/two-services.ts                      # memory route
 *   npx tsx docs/examples/two-services.ts redis://127.0.0.1:6379
 *
 * @runs-without-redis
 */
import { RedisClient, RedisVars, defineCatalogue, defineVar, moduleEvents } from 'intracom';

/** The application's own variables, declared once and typed everywhere. */
const Users = defineCatalogue('users', {
  vars: {
    OnlineCount: defineVar({ name: 'OnlineCount', type: 'integer', owner: 'users', description: 'Users online right now' }),
  },
  topics: {},
});

interface UserEvent {
  user: string;
  type: 'USER_CONNECTED' | 'USER_DISCONNECTED';
}

export async function main(redisUrl?: string): Promise<string[]> {
  const transcript: string[] = [];
  const say = (line: string): void => {
    transcript.push(line);
    console.log(line);
  };
  const connection = redisUrl ? { redis: redisUrl, namespace: `example${process.pid}` } : { route: 'memory' as const };

  const users = new RedisClient({ service: 'users', ...connection });
  const dashboard = new RedisClient({ service: 'dashboard', ...connection });
  await Promise.all([users.connect(), dashboard.connect()]);
  say(`route: ${redisUrl ? 'redis' : 'memory'}`);

  // The dashboard follows the users module's events and the online counter.
  let resolveSeen: () => void = () => undefined;
  const seen = new Promise<void>((resolve) => (resolveSeen = resolve));
  const events: UserEvent[] = [];
  await dashboard.subscribe<UserEvent>(moduleEvents('users'), (event, { headers }) => {
    events.push(event);
    say(`dashboard got ${event.type} for ${event.user} from ${headers.serviceName}`);
    if (events.length === 3) resolveSeen();
  });
  const counts: number[] = [];
  await dashboard.watch(Users.vars.OnlineCount, ({ value }) => void counts.push(value ?? 0));

  // The users service announces connections and keeps the counter, atomically.
  for (const [user, type] of [['alice', 'USER_CONNECTED'], ['bob', 'USER_CONNECTED'], ['alice', 'USER_DISCONNECTED']] as const) {
    await users.publish<UserEvent>(moduleEvents('users'), { user, type });
    await users.increment(Users.vars.OnlineCount, type === 'USER_CONNECTED' ? 1 : -1);
  }
  await users.set(RedisVars.ServiceInfo, 'users', { hostname: 'users-1', port: 4040 });
  await seen;

  say(`online now: ${await dashboard.get(Users.vars.OnlineCount)}`);
  say(`users service info: ${JSON.stringify(await dashboard.get(RedisVars.ServiceInfo, 'users'))}`);
  say(`live users instances: ${(await dashboard.instances('users')).length}`);

  await users.delete(Users.vars.OnlineCount);
  await users.delete(RedisVars.ServiceInfo, 'users');
  await Promise.all([users.close(), dashboard.close()]);
  return transcript;
}

if (require.main === module) {
  main(process.argv[2] ?? process.env.REDIS_URL).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
