/**
 * Option parsing of RedisMutex: the constructor's options and the per-call
 * options of `acquire`, `tryAcquire` and `withMutex`, each checked and named
 * in its error, and filled in from {@link DEFAULT_MUTEX_OPTIONS}.
 */
import type { Logger } from 'pino';
import { ValidationError } from '../errors/ValidationError';
import { assertNodeId, assertTimeout, describe } from './record';
import { ACQUIRE_OPTION_NAMES, DEFAULT_MUTEX_OPTIONS, type AcquireOptions, type RedisMutexOptions } from './RedisMutexOptions';
import { refuseUnknownOptions } from '../../vars/options';
import { defaultLogger } from '../log/logger';
import { RedisClient } from '../client/RedisClient';

/** The constructor's options once checked (the connection and namespace are resolved by MutexConnection). */
export interface MutexSettings {
  nodeId: string;
  logger: Logger;
  commandTimeoutMs: number;
  closeTimeoutMs: number;
  defaultTimeoutMs: number;
  waitMs: number;
  retryDelayMs: number;
  retryJitterMs: number;
  refreshRatio: number;
}

/** One acquire's options once checked and filled in from the RedisMutex's settings. */
export interface ResolvedAcquire {
  nodeId: string;
  timeoutMs: number;
  waitMs: number;
  retryDelayMs: number;
  retryJitterMs: number;
  signal: AbortSignal | undefined;
  autoRefresh: boolean;
}

/** Checks the constructor's options (but `redis` and `namespace`); `defaultNodeId` comes from the connection. */
export function parseMutexOptions(options: RedisMutexOptions, defaultNodeId: string): MutexSettings {
  const nodeId = options.nodeId ?? defaultNodeId;
  assertNodeId(nodeId, 'nodeId');
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_MUTEX_OPTIONS.commandTimeoutMs;
  assertTimeout(commandTimeoutMs, 'commandTimeoutMs');
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_MUTEX_OPTIONS.closeTimeoutMs;
  if (typeof closeTimeoutMs !== 'number' || !Number.isSafeInteger(closeTimeoutMs) || closeTimeoutMs < 0) {
    throw new ValidationError(`closeTimeoutMs must be a non-negative integer; received ${describe(options.closeTimeoutMs)}`);
  }
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_MUTEX_OPTIONS.defaultTimeoutMs;
  assertTimeout(defaultTimeoutMs, 'defaultTimeoutMs');
  const waitMs = waitOption('waitMs', options.waitMs ?? DEFAULT_MUTEX_OPTIONS.waitMs);
  const retryDelayMs = delayOption('retryDelayMs', options.retryDelayMs ?? DEFAULT_MUTEX_OPTIONS.retryDelayMs);
  const retryJitterMs = delayOption('retryJitterMs', options.retryJitterMs ?? DEFAULT_MUTEX_OPTIONS.retryJitterMs);
  const refreshRatio = options.refreshRatio ?? DEFAULT_MUTEX_OPTIONS.refreshRatio;
  if (typeof refreshRatio !== 'number' || !(refreshRatio >= 0.05 && refreshRatio <= 0.9)) {
    throw new ValidationError(`refreshRatio must be a number from 0.05 to 0.9; received ${describe(options.refreshRatio)}`);
  }
  if (options.logger !== undefined && typeof options.logger?.child !== 'function') {
    throw new ValidationError(`logger must be a pino logger; received ${describe(options.logger)}`);
  }
  // on a RedisClient's connection the mutex logs as a module of that instance (service and instance bound once)
  const logger = options.logger === undefined && options.redis instanceof RedisClient ? options.redis.moduleLogger('mutex') : (options.logger ?? defaultLogger()).child({ module: 'mutex', nodeId });
  return { nodeId, logger, commandTimeoutMs, closeTimeoutMs, defaultTimeoutMs, waitMs, retryDelayMs, retryJitterMs, refreshRatio };
}

/** Checks one call's options; `autoRefresh` defaults to true for `withMutex` only. */
export function parseAcquireOptions(options: AcquireOptions, settings: MutexSettings, withMutex: boolean): ResolvedAcquire {
  if (typeof options !== 'object' || options === null) throw new ValidationError(`options must be an object; received ${describe(options)}`);
  refuseUnknownOptions(withMutex ? 'withMutex' : 'acquire', options, ACQUIRE_OPTION_NAMES);
  const nodeId = options.nodeId ?? settings.nodeId;
  assertNodeId(nodeId, 'nodeId option');
  const timeoutMs = options.timeoutMs ?? settings.defaultTimeoutMs;
  assertTimeout(timeoutMs, 'timeoutMs option');
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new ValidationError(`signal option must be an AbortSignal; received ${describe(signal)}`);
  const autoRefresh = options.autoRefresh ?? withMutex;
  if (typeof autoRefresh !== 'boolean') throw new ValidationError(`autoRefresh option must be a boolean; received ${describe(autoRefresh)}`);
  return {
    nodeId,
    timeoutMs,
    waitMs: waitOption('waitMs option', options.waitMs ?? settings.waitMs),
    retryDelayMs: delayOption('retryDelayMs option', options.retryDelayMs ?? settings.retryDelayMs),
    retryJitterMs: delayOption('retryJitterMs option', options.retryJitterMs ?? settings.retryJitterMs),
    signal,
    autoRefresh,
  };
}

function waitOption(name: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new ValidationError(`${name} must be a number of milliseconds >= 0, or Infinity; received ${describe(value)}`);
  }
  return value;
}

function delayOption(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`${name} must be a finite number of milliseconds >= 0; received ${describe(value)}`);
  }
  return value;
}
