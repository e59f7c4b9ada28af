/**
 * A clock every process of the machine reads alike, for latencies from a
 * stamp taken in one process to a reading in another: milliseconds of the
 * machine's monotonic clock (what `process.hrtime` reads), read through
 * `performance.now()`, the same clock from a per-process origin.
 * `performance.timeOrigin + performance.now()` is not alike across
 * processes: the origin pairs two clock readings taken as the process
 * starts, and a process descheduled between them (many peers starting at
 * once on one pinned CPU) is off by up to a time slice.
 */
import { performance } from 'node:perf_hooks';

/**
 * The monotonic clock's reading at this process's `performance.now()`
 * origin: the least of a few paired readings, as a pause between the two of
 * a pair only adds to it.
 */
const origin = Math.min(
  ...Array.from({ length: 8 }, () => {
    const sinceOrigin = performance.now();
    return Number(process.hrtime.bigint()) / 1e6 - sinceOrigin;
  }),
);

/** Milliseconds of the machine's monotonic clock, the same in every process. */
export function machineNow(): number {
  return origin + performance.now();
}
