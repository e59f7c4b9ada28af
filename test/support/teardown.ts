/**
 * Fixtures that live for a whole test run (the cluster and Sentinel of
 * redis-topologies.ts, started once and shared by every suite) register their
 * stop here; setup.ts runs them after the last test and before it checks that
 * nothing is left open.
 */
const teardowns: Array<() => Promise<void>> = [];

/** Registers `stop` to run once at the end of the run. */
export function atRunEnd(stop: () => Promise<void>): void {
  teardowns.push(stop);
}

/** Runs (and forgets) every registered stop. */
export async function runTeardowns(): Promise<void> {
  await Promise.all(teardowns.splice(0).map((stop) => stop()));
}
