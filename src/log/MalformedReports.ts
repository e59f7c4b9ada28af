import { MalformedMessageError } from '../errors/MalformedMessageError';

/** Reasons one report describes at the most; the rest of its messages are counted only. */
export const MAX_REASONS_PER_REPORT = 3;

/** Invalid messages of one source (or one entry): how many, and why for the first few. */
export interface InvalidTally {
  count: number;
  reasons: string[];
}

/** Adds one invalid message to `tally` (a new one when undefined) and returns it. */
export function tallyInvalid(tally: InvalidTally | undefined, reason: string): InvalidTally {
  const counted = tally ?? { count: 0, reasons: [] };
  counted.count += 1;
  if (counted.reasons.length < MAX_REASONS_PER_REPORT) counted.reasons.push(reason);
  return counted;
}

/**
 * Reports invalid messages once per source and turn of the event loop: the
 * messages of a frame are handed over one by one in one synchronous loop, so
 * a frame of a million invalid messages becomes one MalformedMessageError
 * (its `count` a million, the reasons of the first few), built after the loop.
 * Building an error (a stack trace) and logging per message would cost about
 * forty times the handling of a valid one, and a sender could stall the
 * receiver with a single frame. Callers count every message themselves: the
 * counters stay exact whatever the reports group.
 */
export class MalformedReports {
  private pending = new Map<string, InvalidTally>();

  constructor(
    private readonly report: (error: MalformedMessageError) => void,
    /** Told what `report` threw (a `malformed` listener's bug): outside the delivery loop, nothing else would catch it. */
    private readonly reportFailed: (error: unknown) => void,
  ) {}

  /** One invalid message received on `source`, reported at the end of the turn with the others of that source. */
  add(source: string, reason: string): void {
    const pending = this.pending.get(source);
    if (pending !== undefined) {
      tallyInvalid(pending, reason);
      return;
    }
    if (this.pending.size === 0) queueMicrotask(this.flush);
    this.pending.set(source, tallyInvalid(undefined, reason));
  }

  private readonly flush = (): void => {
    const pending = this.pending;
    this.pending = new Map();
    for (const [source, { count, reasons }] of pending) {
      try {
        this.report(new MalformedMessageError(source, reasons[0], { count, reasons }));
      } catch (error) {
        this.reportFailed(error);
      }
    }
  };
}
