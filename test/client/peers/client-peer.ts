/**
 * A RedisClient in a process of its own, driven over IPC by the client tests.
 * Environment: TEST_REDIS_URL, TEST_NAMESPACE, TEST_SERVICE, TEST_INSTANCE_ID,
 * TEST_HEARTBEAT_MS, TEST_TTL_MS.
 */
import { RedisClient } from '../../../src/client/RedisClient';
import { RedisVars } from '../../../vars/RedisVars';

type Command =
  | { cmd: 'subscribe'; topic: string }
  | { cmd: 'watch' }
  | { cmd: 'publish'; topic: string; payload: unknown }
  | { cmd: 'setServiceInfo'; key: string; value: unknown }
  | { cmd: 'increment'; times: number; key: string }
  | { cmd: 'close' };

const send = (message: unknown): void => void process.send?.(message);

async function main(): Promise<void> {
  const client = new RedisClient({
    service: process.env.TEST_SERVICE ?? 'peer',
    instanceId: process.env.TEST_INSTANCE_ID,
    redis: process.env.TEST_REDIS_URL,
    namespace: process.env.TEST_NAMESPACE,
    registry: {
      heartbeatMs: Number(process.env.TEST_HEARTBEAT_MS ?? 1000),
      ttlMs: Number(process.env.TEST_TTL_MS ?? 5000),
    },
  });
  await client.connect();
  process.on('message', (command: Command) => {
    void handle(client, command).catch((error: unknown) => send({ ev: 'failed', error: String(error) }));
  });
  send({ ev: 'ready', instanceId: client.instanceId });
}

async function handle(client: RedisClient, command: Command): Promise<void> {
  switch (command.cmd) {
    case 'subscribe':
      await client.subscribe(command.topic, (payload, event) => void send({ ev: 'event', topic: event.topic, payload, headers: event.headers }));
      return send({ ev: 'subscribed' });
    case 'watch':
      await client.watch(RedisVars.UserLoginAttempts, (change) => void send({ ev: 'change', change }));
      return send({ ev: 'watching' });
    case 'publish':
      return send({ ev: 'published', receivers: await client.publish(command.topic, command.payload) });
    case 'setServiceInfo':
      await client.set(RedisVars.ServiceInfo, command.key, command.value);
      return send({ ev: 'set' });
    case 'increment': {
      const values = await Promise.all(Array.from({ length: command.times }, () => client.increment(RedisVars.UserLoginAttempts, command.key)));
      return send({ ev: 'incremented', values });
    }
    case 'close':
      await client.close();
      send({ ev: 'closed' });
      process.disconnect?.();
      return;
  }
}

main().catch((error: unknown) => {
  send({ ev: 'failed', error: String(error) });
  process.exitCode = 1;
});
