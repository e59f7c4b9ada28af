import { hostname } from 'node:os';
import { IntracomError } from './IntracomError';

/**
 * `connect()` found another live process announced under this client's
 * `service` and `instanceId`, and it did not leave (close, or its
 * announcement expire) within `registry.instanceIdWaitMs`. Two processes
 * under one id cannot tell each other's claims on durable queries apart, nor
 * their RPC requests (they share the instance channel), so the second does
 * not start. Nothing was announced or consumed; connect() may be retried.
 */
export class InstanceIdInUseError extends IntracomError {
  /** The service key. */
  readonly service: string;
  /** The instance id that is taken. */
  readonly instanceId: string;
  /** What the holder announced (`host`, `pid`, `startedAt`), when it decodes. */
  readonly holder: { host?: unknown; pid?: unknown; startedAt?: unknown } | undefined;
  /** How long connect() waited, in ms (the `registry.instanceIdWaitMs` in force). */
  readonly waitMs: number;

  constructor(service: string, instanceId: string, holder: { host?: unknown; pid?: unknown; startedAt?: unknown } | undefined, waitMs: number) {
    // another client of this very process counts as another process (its own startedAt): say which
    const own = holder !== undefined && holder.pid === process.pid && holder.host === hostname();
    const who = own ? 'another client of this process' : 'another process';
    const by = holder === undefined ? who : `${who} (host ${String(holder.host)}, pid ${String(holder.pid)}, started ${typeof holder.startedAt === 'number' ? new Date(holder.startedAt).toISOString() : String(holder.startedAt)})`;
    super(
      'ERR_INSTANCE_ID_IN_USE',
      `instance id "${instanceId}" of service "${service}" is held by ${by}, still live after ${waitMs} ms (registry.instanceIdWaitMs): two processes under one id would run durable queries twice; close the other one first or give this one another instanceId`,
    );
    this.service = service;
    this.instanceId = instanceId;
    this.holder = holder;
    this.waitMs = waitMs;
  }
}
