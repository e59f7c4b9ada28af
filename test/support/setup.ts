/**
 * Loaded by mocha before any test (see .mocharc.json): quiet logs unless
 * asked for, and the proof that the suite leaks nothing.
 *
 * mocha runs without `exit: true`, so a socket, timer, server or child
 * process left behind would keep the process alive. The root `afterAll` hook
 * below fails the suite instead, naming what is left; and a watchdog ends a
 * process that still does not exit, with the list, instead of letting CI hang.
 */
import { createHook } from 'node:async_hooks';
import type { Context } from 'mocha';
import { runTeardowns } from './teardown';

process.env.INTRACOM_LOG_LEVEL ??= 'silent';

/** How long closing sockets and child processes may take to go once the last test is over. */
const DRAIN_MS = Number(process.env.TEST_LEAK_DRAIN_MS ?? 5000);
/** How long the process may take to exit after the leak check passed (reporters write, then nothing is left). */
const WATCHDOG_MS = Number(process.env.TEST_EXIT_WATCHDOG_MS ?? 15_000);

/** What keeps the event loop alive when the tests start (mocha itself, stdio): not a leak. */
const baseline = process.getActiveResourcesInfo();

/**
 * With `TEST_LEAK_TRACE=1`, where each live timer was created (async_hooks
 * cost time, so only when hunting a leak): the report then names the code.
 */
interface TracedTimer {
  hasRef?: () => boolean;
  _destroyed?: boolean;
}
const timers: Array<{ timer: WeakRef<TracedTimer>; stack: string }> = [];
if (process.env.TEST_LEAK_TRACE === '1') {
  Error.stackTraceLimit = 40;
  // kept after `destroy`: a fired timer can be re-armed with refresh(), which emits no new init
  createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'Timeout') return;
      // frames: Error, this init hook, Node's timer internals, then the code that made the timer
      const stack = (new Error().stack ?? '').split('\n').slice(2).filter((line) => !line.includes('node:internal/') && !line.includes('node:timers'));
      timers.push({ timer: new WeakRef(resource as TracedTimer), stack: stack.slice(0, 10).join('\n') });
    },
  }).enable();
}

function tracedTimers(): string[] {
  return timers
    .filter(({ timer, stack }) => {
      const live = timer.deref();
      return live !== undefined && live._destroyed !== true && live.hasRef?.() === true && !stack.includes('support/setup.ts');
    })
    .map(({ stack }) => `  a timer created${stack.replace(/^\s*/, ' ')}`);
}

/** A handle as `_getActiveHandles` gives it: sockets, servers, child processes (timers appear only as counts). */
interface Handle {
  constructor: { name: string };
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  pid?: number;
  spawnargs?: string[];
  address?: () => unknown;
}

function describeHandle(handle: Handle): string | undefined {
  if (handle === (process.stdin as unknown) || handle === (process.stdout as unknown) || handle === (process.stderr as unknown)) return undefined;
  const kind = handle.constructor?.name ?? 'handle';
  if (handle.remotePort !== undefined) return `${kind} to ${handle.remoteAddress}:${handle.remotePort} (local port ${handle.localPort})`;
  if (handle.pid !== undefined) return `child process ${handle.pid}: ${(handle.spawnargs ?? []).join(' ')}`;
  if (kind === 'Server' && typeof handle.address === 'function') return `server on ${JSON.stringify(handle.address())}`;
  return kind;
}

/** What keeps the process alive beyond the baseline: resource kinds with counts, then the sockets, servers and children in detail. */
export function leftovers(): string[] {
  const remaining = [...baseline];
  const extra: string[] = [];
  for (const kind of process.getActiveResourcesInfo()) {
    const at = remaining.indexOf(kind);
    if (at === -1) extra.push(kind);
    else remaining.splice(at, 1);
  }
  if (extra.length === 0) return [];
  const counts = new Map<string, number>();
  for (const kind of extra) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  const getHandles = (process as unknown as { _getActiveHandles?: () => Handle[] })._getActiveHandles;
  const details = (getHandles?.call(process) ?? []).map(describeHandle).filter((d): d is string => d !== undefined);
  return [...[...counts].map(([kind, n]) => `${n} x ${kind}`), ...details.map((d) => `  ${d}`), ...tracedTimers()];
}

function startWatchdog(): void {
  const watchdog = setTimeout(() => {
    const left = leftovers();
    process.stderr.write(`\nThe test process did not exit ${WATCHDOG_MS} ms after the last test; still alive:\n${(left.length > 0 ? left : ['(nothing visible: see process._getActiveHandles())']).join('\n')}\n`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref(); // fires only when something else keeps the process alive
}

export const mochaHooks = {
  async afterAll(this: Context): Promise<void> {
    // the hook's own timeout timer (armed by mocha once this function has returned its promise) would count as a
    // leftover: the drain below is bounded, and the watchdog backs it
    await null;
    (this.runnable() as unknown as { clearTimeout(): void }).clearTimeout();
    await runTeardowns(); // the fixtures shared by the whole run, before they could count as left open
    startWatchdog();
    const deadline = Date.now() + DRAIN_MS;
    let left = leftovers();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50)); // ref'd, so that the process waits for the verdict; gone once it fired
      left = leftovers();
    }
    if (left.length > 0) throw new Error(`the tests left handles open ${DRAIN_MS} ms after the last one ended (each file must close what it opens):\n${left.join('\n')}`);
  },
};
