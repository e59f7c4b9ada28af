/**
 * The services of the demo (docs/examples/demo.ts). The same code runs in
 * the demo's process on the memory route, and in one process per instance
 * on Redis (demo/instance.ts).
 *
 * - `users` (OpenTera's UserManagerModule): logins and logouts raise events
 *   on `module.users.events` and keep the `OnlineCount` variable; functions
 *   for the RPC chapter; ASYNC and SYNC actions.
 * - `worker` (three instances): initialise the schema under a mutex at
 *   start; process FIRE_AND_FORGET jobs and BROADCAST configuration reloads.
 * - `orchestrator` (seeds/004): deploys a flow on `flow.starting`, then raises
 *   `flow.started`.
 * - `audit` (seeds/004): records every event on `audit.*`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { CancelledError, RedisMutex, RedisRPCClient, defineCatalogue, defineTopic, defineVar, moduleEvents, type ReceivedEvent } from 'intracom';
import type { MemoryDeployment } from 'intracom/testing';

/** The demo's own variables and topics, declared once and typed everywhere. */
export const Demo = defineCatalogue('demo', {
  vars: {
    OnlineCount: defineVar({ name: 'OnlineCount', type: 'integer', owner: 'users', description: 'Users online right now' }),
    SchemaVersion: defineVar({ name: 'SchemaVersion', type: 'integer', owner: 'worker', description: 'Version of the workers\' schema' }),
    SchemaInitRuns: defineVar({ name: 'SchemaInitRuns', type: 'integer', owner: 'worker', description: 'How many times the schema was initialised (must stay 1)' }),
    FlowStatus: defineVar({ name: 'FlowStatus', type: 'string', owner: 'flow-repository', keyed: true, keyDescription: 'flow id', description: 'starting, started, stopping, stopped' }),
  },
  topics: {
    UsersEvents: defineTopic({ name: moduleEvents('users'), payload: 'UserEvent', publishers: ['users'], subscribers: ['*'], description: 'Users going online and offline' }),
    FlowStarting: defineTopic({ name: 'flow.starting', payload: 'Flow', publishers: ['flow-repository'], subscribers: ['orchestrator'] }),
    FlowStarted: defineTopic({ name: 'flow.started', payload: '{ flowId }', publishers: ['orchestrator'], subscribers: ['flow-repository'] }),
    Audit: defineTopic({ name: 'audit.<what>', payload: 'any', publishers: ['*'], subscribers: ['audit'], description: 'Records for the audit log' }),
    Progress: defineTopic({ name: 'demo.progress', payload: 'Progress', publishers: ['*'], subscribers: ['demo'], description: 'What the demo waits for' }),
  },
});

/** A user going online or offline (OpenTera's user events). */
export interface UserEvent {
  user: string;
  type: 'USER_CONNECTED' | 'USER_DISCONNECTED';
}

/** A flow of seeds/004. */
export interface Flow {
  id: string;
  name: string;
  cron: string | null;
}

/** What instances tell the demo on `demo.progress`, so that it can wait for events instead of sleeping. */
export type Progress =
  | { kind: 'slow-started'; instance: string }
  | { kind: 'hang-started'; instance: string }
  | { kind: 'job-done'; instance: string; job: number; attempt: number }
  | { kind: 'broadcast'; instance: string; version: number };

/** How instances connect: a Redis URL and namespace, or a memory bus. */
export type DemoConnection = { redis: string; namespace: string } | MemoryDeployment['options'];

/** The settings every demo instance uses: quick heartbeats and redelivery, so that the story stays short. */
export const DEMO_SETTINGS = {
  registry: { heartbeatMs: 300, ttlMs: 1500 },
  probeIntervalMs: 200,
  queues: { visibilityTimeoutMs: 800, blockMs: 100, batchSize: 2 },
  closeTimeoutMs: 200,
} as const;

/** The services an instance can be. */
export type Role = 'users' | 'worker' | 'orchestrator' | 'audit';

/** One running instance. */
export interface RunningInstance {
  readonly name: string;
  readonly rpc: RedisRPCClient;
  /** What the instance did at start (the worker's schema initialisation). */
  readonly startup: { schema?: 'ran' | 'already-done' };
  close(): Promise<void>;
}

/** Starts one instance of `role`, named `name` (its instance id). */
export async function startInstance(role: Role, name: string, connection: DemoConnection): Promise<RunningInstance> {
  const rpc = new RedisRPCClient({ service: role, instanceId: name, ...connection, ...DEMO_SETTINGS });
  const client = rpc.client;
  const progress = (event: Progress): Promise<number> => client.publish(Demo.topics.Progress.name, event);
  const startup: RunningInstance['startup'] = {};
  const closers: Array<() => Promise<void>> = [];

  if (role === 'users') {
    const online = new Set<string>();
    const change = async (user: string, type: UserEvent['type']): Promise<number> => {
      await client.publish<UserEvent>(Demo.topics.UsersEvents.name, { user, type });
      return client.increment(Demo.vars.OnlineCount, type === 'USER_CONNECTED' ? 1 : -1);
    };
    await rpc.expose('login', async ([user]: [string]) => {
      online.add(user);
      return change(user, 'USER_CONNECTED');
    });
    await rpc.expose('logout', async ([user]: [string]) => {
      if (!online.delete(user)) throw new Error(`${user} is not online`);
      return change(user, 'USER_DISCONNECTED');
    });
    await rpc.expose('online_users', () => [...online].sort());
    await rpc.expose('slow', async ([ms]: [number], context) => {
      await progress({ kind: 'slow-started', instance: name });
      // Stops early only when the caller cancels (or this instance closes); at the deadline the caller has already moved on.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        context.signal.addEventListener('abort', () => {
          if (context.signal.reason instanceof CancelledError) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      return 'finished';
    });
    rpc.handle('export-report', async (query: { format: string }) => {
      await delay(150); // the work the report takes
      return { format: query.format, online: [...online].sort(), rows: online.size };
    });
    rpc.handle('count-online', () => online.size);
  }

  if (role === 'worker') {
    rpc.handle('resize', async ({ job }: { job: number }, context) => {
      await delay(60); // the work a job takes
      await progress({ kind: 'job-done', instance: name, job, attempt: context.processAttempts });
    });
    rpc.handle('reload-config', async ({ version }: { version: number }) => {
      await progress({ kind: 'broadcast', instance: name, version });
    });
    // Served on a module named after the instance, so that the demo can call this very instance.
    await rpc.expose(
      'hang',
      async (_args, context) => {
        await progress({ kind: 'hang-started', instance: name });
        await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
        return 'released';
      },
      { module: name },
    );
  }

  if (role === 'orchestrator') {
    await client.subscribe<Flow>(Demo.topics.FlowStarting.name, async (flow) => {
      await client.publish('audit.orchestrator.deploying', { flowId: flow.id, containers: 2 });
      await delay(100); // deploying the flow's containers
      await client.publish('audit.orchestrator.deployed', { flowId: flow.id });
      await client.publish(Demo.topics.FlowStarted.name, { flowId: flow.id });
    });
  }

  if (role === 'audit') {
    const records: Array<{ topic: string; from: string; payload: unknown }> = [];
    const waiters = new Set<() => void>();
    await client.psubscribe('audit.*', (payload, event: ReceivedEvent) => {
      records.push({ topic: event.topic, from: event.headers.serviceName, payload });
      for (const wake of waiters) wake();
    });
    // Resolves once at least `count` records were taken (or the caller gives up): no polling.
    await rpc.expose('records', async ([count]: [number], context) => {
      while (records.length < count && !context.signal.aborted) {
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          context.signal.addEventListener('abort', wake, { once: true });
        });
      }
      return records;
    });
  }

  await rpc.connect();

  if (role === 'worker') {
    startup.schema = await initialiseSchema(rpc, name);
  }

  return {
    name,
    rpc,
    startup,
    async close() {
      for (const close of closers) await close();
      await rpc.close();
    },
  };
}

/**
 * Every worker instance calls this at start; the mutex makes the
 * initialisation run exactly once, however many start together (in Redis, or
 * on the memory route's bus for the instances of one process).
 */
async function initialiseSchema(rpc: RedisRPCClient, name: string): Promise<'ran' | 'already-done'> {
  const mutex = new RedisMutex({ redis: rpc.client, nodeId: name });
  try {
    return await mutex.withMutex(
      'worker-schema-init',
      async () => {
        if ((await rpc.client.get(Demo.vars.SchemaVersion)) !== null) return 'already-done' as const;
        await delay(200); // creating tables: long enough for the other instances to queue on the mutex
        await rpc.client.increment(Demo.vars.SchemaInitRuns);
        await rpc.client.set(Demo.vars.SchemaVersion, 1);
        return 'ran' as const;
      },
      { timeoutMs: 5000, waitMs: 5000 },
    );
  } finally {
    await mutex.close();
  }
}
