/**
 * Redis's glob-style matcher (`stringmatchlen` of Redis's src/util.c, BSD-3-Clause,
 * Copyright (c) 2009-current Redis Ltd.), ported step by step so that the memory
 * route matches PSUBSCRIBE patterns (and KEYS/SCAN patterns) exactly as Redis
 * does, odd patterns included: `[]a]`, an unterminated `a[bc`, `[a\-z]`,
 * `[a-]`, `[\]]`, a reversed range `[z-a]`. It never throws.
 *
 * Like Redis it works on bytes (UTF-8), so `?` is one byte, not one character.
 * Bytes are compared as C `char`, which is signed on the x86-64 and most
 * builds: in a range, a byte of 0x80 or more counts as negative, as in
 * those builds.
 */
import { isWellFormed } from '../envelope/PlainEncoder';

/** What the matcher reads; past the end it reads 0 (Redis's strings end with a NUL that the loop may read). */
type Bytes = Int8Array;

const STAR = 0x2a; // *
const QUESTION = 0x3f; // ?
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const CARET = 0x5e; // ^
const BACKSLASH = 0x5c; // \
const DASH = 0x2d; // -
/** Redis gives up (no match) beyond this depth of `*` recursion (CVE-2022-36021). */
const MAX_NESTING = 1000;

function at(bytes: Bytes, index: number): number {
  return index < bytes.length ? bytes[index] : 0;
}

/** The state shared by one match's recursive calls (Redis's `skipLongerMatches`). */
interface MatchState {
  skipLongerMatches: boolean;
}

/**
 * `stringmatchlen_impl` with `nocase = 0` (PSUBSCRIBE and KEYS are
 * case-sensitive): `p`/`s` index the pattern and the string, `pl`/`sl` are
 * the lengths left, as in the C code.
 */
function matchFrom(pattern: Bytes, p: number, pl: number, string: Bytes, s: number, sl: number, state: MatchState, nesting: number): boolean {
  if (nesting > MAX_NESTING) return false;
  while (pl > 0 && sl > 0) {
    switch (at(pattern, p)) {
      case STAR: {
        while (pl > 0 && at(pattern, p + 1) === STAR) {
          p++;
          pl--;
        }
        if (pl === 1) return true;
        while (sl > 0) {
          if (matchFrom(pattern, p + 1, pl - 1, string, s, sl, state, nesting + 1)) return true;
          if (state.skipLongerMatches) return false;
          s++;
          sl--;
        }
        // the rest of the pattern matches nowhere in the rest of the string: no earlier `*` can help either
        state.skipLongerMatches = true;
        return false;
      }
      case QUESTION:
        s++;
        sl--;
        break;
      case OPEN: {
        p++;
        pl--;
        const not = at(pattern, p) === CARET;
        if (not) {
          p++;
          pl--;
        }
        let match = false;
        for (;;) {
          if (at(pattern, p) === BACKSLASH && pl >= 2) {
            p++;
            pl--;
            if (at(pattern, p) === at(string, s)) match = true;
          } else if (at(pattern, p) === CLOSE) {
            break;
          } else if (pl === 0) {
            // unterminated class: what was read so far is the class
            p--;
            pl++;
            break;
          } else if (pl >= 3 && at(pattern, p + 1) === DASH) {
            let start = at(pattern, p);
            let end = at(pattern, p + 2);
            const c = at(string, s);
            if (start > end) [start, end] = [end, start];
            p += 2;
            pl -= 2;
            if (c >= start && c <= end) match = true;
          } else if (at(pattern, p) === at(string, s)) {
            match = true;
          }
          p++;
          pl--;
        }
        if (not) match = !match;
        if (!match) return false;
        s++;
        sl--;
        break;
      }
      case BACKSLASH:
        if (pl >= 2) {
          p++;
          pl--;
        }
        if (at(pattern, p) !== at(string, s)) return false;
        s++;
        sl--;
        break;
      default:
        if (at(pattern, p) !== at(string, s)) return false;
        s++;
        sl--;
        break;
    }
    p++;
    pl--;
    if (sl === 0) {
      while (at(pattern, p) === STAR) {
        p++;
        pl--;
      }
      break;
    }
  }
  return pl === 0 && sl === 0;
}

/** The bytes of a pattern or subject as the matcher reads them (UTF-8, as C `char`). */
export type GlobBytes = Int8Array;

/** Encodes a pattern or a subject once, for {@link globMatchBytes}. */
export function globBytes(text: string | Uint8Array): GlobBytes {
  const buffer = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  return new Int8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** {@link globMatch} on bytes encoded with {@link globBytes} (to encode a pattern or a channel once for many matches). */
export function globMatchBytes(pattern: GlobBytes, subject: GlobBytes): boolean {
  return matchFrom(pattern, 0, pattern.length, subject, 0, subject.length, { skipLongerMatches: false }, 0);
}

/** True when `subject` matches the glob `pattern` exactly as Redis's PSUBSCRIBE (and KEYS) would match it. */
export function globMatch(pattern: string | Uint8Array, subject: string | Uint8Array): boolean {
  return globMatchBytes(globBytes(pattern), globBytes(subject));
}

/** True when `text` holds a lone surrogate (half of a UTF-16 pair), which UTF-8 cannot carry: it would arrive as U+FFFD. */
export function hasLoneSurrogate(text: string): boolean {
  // the encoder's own test, so that names, variables and messages refuse exactly the same strings
  return !isWellFormed.call(text);
}

/**
 * Why `pattern` cannot be subscribed to, or undefined when it can: it must be
 * a non-empty string that UTF-8 can carry unchanged (a lone surrogate would
 * reach Redis as U+FFFD and match something else than was asked). Any such
 * string is a pattern Redis accepts, and matching it never throws.
 */
export function patternProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return `pattern must be a non-empty string; received ${typeof pattern === 'string' ? '""' : String(pattern)}`;
  if (hasLoneSurrogate(pattern)) return `pattern must be well-formed Unicode (no lone surrogate); received ${JSON.stringify(pattern)}`;
  return undefined;
}

/**
 * Why `name` (a topic, or `topics[3]`) cannot name a channel, or undefined:
 * it must be a non-empty string that UTF-8 carries unchanged. A lone
 * surrogate reaches Redis as U+FFFD: two such topics would subscribe one
 * channel, and its events would never match the topic asked for.
 */
export function topicProblem(topic: unknown, name: string, describe: (value: unknown) => string): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return `${name} must be a non-empty string; received ${describe(topic)}`;
  if (hasLoneSurrogate(topic)) return `${name} must be well-formed Unicode (no lone surrogate: Redis would receive U+FFFD instead); received ${JSON.stringify(topic)}`;
  return undefined;
}
