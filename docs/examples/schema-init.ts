/**
 * seeds/001's use case: several instances of a service start at the same
 * moment, and the database schema must be initialised by exactly one of them
 * while the others wait until it is ready.
 *
 * Run it (it starts the instances itself, as separate processes):
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx docs/examples/schema-init.ts [instances]
 *
 * Every instance runs `withMutex`: the first one in initialises the schema;
 * the others wait for the mutex, then find the schema ready and skip it.
 * (The seed's `P` tries once and does not wait; an instance that lost the
 * race would go on before the schema exists, hence the waiting form here.)
 * A Redis key stands in for the database. Exit code 0 when the schema was
 * initialised exactly once.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { Names, RedisMutex } from 'intracom';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const SCHEMA_VERSION = '3';

/** Keys of the stand-in database, under the run's namespace. */
function databaseKeys(namespace: string) {
  return { schemaVersion: `${namespace}:db:schema-version`, initialisations: `${namespace}:db:initialisations` };
}

/** The work only one instance may do: slow, and not safe to run twice at once. */
async function initialiseSchema(db: Redis, namespace: string, signal: AbortSignal): Promise<void> {
  const keys = databaseKeys(namespace);
  await db.incr(keys.initialisations); // counts how often it really ran
  for (const table of ['users', 'sessions', 'devices']) {
    signal.throwIfAborted(); // the lock was lost: stop before doing damage
    await createTable(table);
  }
  await db.set(keys.schemaVersion, SCHEMA_VERSION);
}

/** Stands in for `CREATE TABLE`: takes a while. */
async function createTable(name: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100 + name.length));
}

/** One service instance starting up. */
async function instance(index: number, namespace: string): Promise<void> {
  const nodeId = `api-${index}`;
  const mutex = new RedisMutex({ redis: REDIS_URL, namespace, nodeId });
  const db = new Redis(REDIS_URL);
  await db.ping();
  process.send?.({ type: 'ready' });
  await new Promise<void>((resolve) => process.once('message', () => resolve())); // start together

  const outcome = await mutex.withMutex(
    'api-schema-init',
    async (signal, lock) => {
      if ((await db.get(databaseKeys(namespace).schemaVersion)) === SCHEMA_VERSION) return 'found the schema ready';
      await initialiseSchema(db, namespace, signal);
      return `initialised the schema (fence ${lock.fence})`;
    },
    { timeoutMs: 5_000, waitMs: 30_000 },
  );
  process.send?.({ type: 'done', nodeId, outcome });
  await mutex.close();
  db.disconnect();
  process.disconnect?.();
}

/** Starts the instances at once and checks that the schema was initialised exactly once. */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? process.env.INSTANCES ?? 4);
  const namespace = process.env.INTRACOM_NAMESPACE ?? `schema-init-${randomUUID().slice(0, 8)}`;
  // process.argv[1] is this file, as a CommonJS and an ES module project both see it (`__filename` is
  // not defined in an ES module, `import.meta` not in CommonJS); the children inherit tsx's loader
  const children = Array.from({ length: count }, (_, index) => fork(process.argv[1], ['--instance', String(index), namespace]));
  const ready = children.map((child) => new Promise<void>((resolve) => child.once('message', () => resolve())));
  const done = children.map(
    (child) =>
      new Promise<{ nodeId: string; outcome: string }>((resolve, reject) => {
        child.on('message', (message: { type: string; nodeId: string; outcome: string }) => message.type === 'done' && resolve(message));
        child.once('exit', (code) => code !== 0 && reject(new Error(`an instance exited with ${code}`)));
      }),
  );
  await Promise.all(ready);
  for (const child of children) child.send('go');
  const results = await Promise.all(done);
  for (const { nodeId, outcome } of results.sort((a, b) => a.nodeId.localeCompare(b.nodeId))) console.log(`${nodeId}: ${outcome}`);

  const db = new Redis(REDIS_URL);
  const keys = databaseKeys(namespace);
  const runs = Number(await db.get(keys.initialisations));
  const version = await db.get(keys.schemaVersion);
  await db.del(keys.initialisations, keys.schemaVersion, new Names(namespace).mutexFence('api-schema-init'));
  db.disconnect();
  if (runs === 1 && version === SCHEMA_VERSION) {
    console.log(`schema v${version} initialised exactly once by ${count} instances starting at once`);
  } else {
    console.log(`schema initialised ${runs} times (expected once)`);
    process.exitCode = 1;
  }
}

if (process.argv[2] === '--instance') {
  instance(Number(process.argv[3]), process.argv[4]).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
