/**
 * One instance of a demo service in its own process (the demo's Redis run
 * forks this file once per instance). Environment: DEMO_ROLE, DEMO_NAME,
 * REDIS_URL, DEMO_NAMESPACE. Tells its parent `{ ready, startup }` over IPC
 * once serving, and closes cleanly on `{ stop: true }`.
 */
import { startInstance, type Role } from './services';

async function run(): Promise<void> {
  const role = process.env.DEMO_ROLE as Role;
  const name = process.env.DEMO_NAME as string;
  const instance = await startInstance(role, name, { redis: process.env.REDIS_URL as string, namespace: process.env.DEMO_NAMESPACE as string });
  process.send?.({ ready: name, startup: instance.startup });
  process.on('message', (message: { stop?: boolean }) => {
    if (message.stop) {
      instance.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    }
  });
  process.on('disconnect', () => void instance.close().finally(() => process.exit(0)));
}

run().catch((error: unknown) => {
  console.error(`demo instance ${process.env.DEMO_NAME}: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});
