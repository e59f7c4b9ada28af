import type { Logger } from 'pino';

/** Options of {@link RateLimitedLog}. */
export interface RateLimitedLogOptions {
  /**
   * Length of a window, in ms: within one window each key logs at most
   * `burst` lines; the rest are counted and reported by the key's next line.
   * @default 10000
   */
  intervalMs?: number;
  /**
   * Lines one key may write per window before the rest are only counted.
   * @default 1
   */
  burst?: number;
  /**
   * Keys remembered at once; past this, the oldest windows are reported and
   * forgotten, so hostile traffic inventing keys cannot grow the table.
   * @default 1000
   */
  maxKeys?: number;
}

/** The defaults of {@link RateLimitedLogOptions}. */
export const DEFAULT_RATE_LIMITED_LOG_OPTIONS: Required<RateLimitedLogOptions> = { intervalMs: 10_000, burst: 1, maxKeys: 1000 };

type Level = 'warn' | 'error' | 'info';

interface Window {
  startedAt: number;
  written: number;
  /** Occurrences counted but not written in this window. */
  suppressed: number;
  level: Level;
  message: string;
}

/**
 * Logs a repeated warning once per window per key, with the count of what
 * it left out: `{ suppressed: 41, windowMs: 10000 }` on the next line of
 * that key (or on `flush()`, at close). A flood of bad frames costs a few
 * lines, not one line per frame, and the counts say how big the flood was.
 * No timer: a window is closed by the next occurrence of its key or by
 * `flush()`, so nothing here keeps a process alive.
 *
 * @example
 * const warnings = new RateLimitedLog(logger);
 * warnings.warn('malformed:' + channel, { channel, reason }, 'malformed frame skipped');
 */
export class RateLimitedLog {
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;
  private readonly windows = new Map<string, Window>();
  /** Occurrences not written since creation, all keys together. */
  suppressedTotal = 0;

  constructor(
    private readonly logger: Logger,
    options: RateLimitedLogOptions = {},
    /** The clock, replaceable in tests. */
    private readonly now: () => number = Date.now,
  ) {
    const merged = { ...DEFAULT_RATE_LIMITED_LOG_OPTIONS, ...options };
    for (const name of ['intervalMs', 'burst', 'maxKeys'] as const) {
      const value = merged[name];
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
        throw new RangeError(`RateLimitedLog option ${name} must be a positive integer; received ${String(value)}`);
      }
    }
    this.intervalMs = merged.intervalMs;
    this.burst = merged.burst;
    this.maxKeys = merged.maxKeys;
  }

  /** Logs at `warn`, unless `key` has written `burst` lines in the current window. Returns true when written. */
  warn(key: string, fields: object, message: string): boolean {
    return this.write('warn', key, fields, message);
  }

  /** Logs at `error`, rate-limited like {@link warn}. */
  error(key: string, fields: object, message: string): boolean {
    return this.write('error', key, fields, message);
  }

  /** Logs at `info`, rate-limited like {@link warn}. */
  info(key: string, fields: object, message: string): boolean {
    return this.write('info', key, fields, message);
  }

  /** Reports the counts of every window that left lines out, and forgets every window. */
  flush(): void {
    for (const [key, window] of this.windows) this.report(key, window);
    this.windows.clear();
  }

  private write(level: Level, key: string, fields: object, message: string): boolean {
    const now = this.now();
    let window = this.windows.get(key);
    if (window !== undefined && now - window.startedAt >= this.intervalMs) {
      // a new window: its first line carries what the last one left out
      const suppressed = window.suppressed;
      window.startedAt = now;
      window.written = 1;
      window.suppressed = 0;
      this.logger[level](suppressed > 0 ? { ...fields, suppressed, windowMs: this.intervalMs } : fields, message);
      return true;
    }
    if (window === undefined) {
      if (this.windows.size >= this.maxKeys) this.evictOldest();
      window = { startedAt: now, written: 0, suppressed: 0, level, message };
      this.windows.set(key, window);
    }
    if (window.written < this.burst) {
      window.written += 1;
      this.logger[level](fields, message);
      return true;
    }
    window.suppressed += 1;
    this.suppressedTotal += 1;
    return false;
  }

  private evictOldest(): void {
    // Map keeps insertion order: the first keys are the oldest windows
    let count = Math.max(1, this.maxKeys >> 4);
    for (const [key, window] of this.windows) {
      this.report(key, window);
      this.windows.delete(key);
      if (--count === 0) break;
    }
  }

  private report(key: string, window: Window): void {
    if (window.suppressed === 0) return;
    this.logger[window.level]({ key, suppressed: window.suppressed, windowMs: this.intervalMs }, `${window.message} (repeats left out)`);
    window.suppressed = 0;
  }
}
