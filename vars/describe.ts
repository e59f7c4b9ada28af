/**
 * How every error message of intracom shows a value it refused: short, and
 * never the whole value (a secret or a megabyte of payload stays out of logs).
 *
 * `"text"` (cut at 40 characters), `42`, `12n`, `true`, `null`, `undefined`,
 * `a function`, `a Buffer of 3 bytes`, `an array of 2`, `a Date`,
 * `an object` (plain) or `an object (Map)`.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value === null || typeof value !== 'object') return String(value);
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Date) return 'a Date';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return 'an object';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name.length > 0 ? `an object (${name})` : 'an object';
}
