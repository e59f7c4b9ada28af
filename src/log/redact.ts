/**
 * ioredis attaches the failing command to its errors (`err.command =
 * { name, args }`): for the handshake that is `HELLO 3 AUTH <user>
 * <password>`, so a wrong password would be written in clear by any logger
 * that serializes the error. Credentials are masked in place before an
 * error is logged or handed on.
 */

/** What a masked argument reads. */
export const REDACTED = '[redacted]';

type CommandCarrier = { command?: { name?: unknown; args?: unknown }; cause?: unknown; lastNodeError?: unknown };

/**
 * Masks the credentials in the `command` of `error` (and of its `cause`
 * chain) in place: every argument of AUTH, the password after HELLO's AUTH,
 * the rules of ACL SETUSER, MIGRATE's AUTH/AUTH2 passwords and CONFIG SET's
 * requirepass/masterauth values. Returns `error`.
 */
export function redactCredentials<E>(error: E): E {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const carrier = current as CommandCarrier;
    const command = carrier.command;
    if (typeof command === 'object' && command !== null && Array.isArray(command.args) && typeof command.name === 'string') {
      command.args = redactArgs(command.name, command.args);
    }
    current = carrier.cause ?? carrier.lastNodeError;
  }
  return error;
}

/** `args` of command `name` with its credentials masked (a new array when any is). */
export function redactArgs(name: string, args: readonly unknown[]): unknown[] {
  const masked = [...args];
  const word = (i: number) => String(masked[i]).toLowerCase();
  switch (name.toLowerCase()) {
    case 'auth':
      return masked.map(() => REDACTED);
    case 'hello':
      for (let i = 0; i < masked.length; i++) if (word(i) === 'auth' && i + 2 < masked.length) masked[i + 2] = REDACTED;
      return masked;
    case 'acl':
      if (word(0) === 'setuser') for (let i = 2; i < masked.length; i++) masked[i] = REDACTED;
      return masked;
    case 'migrate':
      for (let i = 0; i < masked.length; i++) {
        if (word(i) === 'auth' && i + 1 < masked.length) masked[i + 1] = REDACTED;
        if (word(i) === 'auth2' && i + 2 < masked.length) masked[i + 2] = REDACTED;
      }
      return masked;
    case 'config':
      if (word(0) === 'set') for (let i = 1; i + 1 < masked.length; i += 2) if (['requirepass', 'masterauth', 'masteruser'].includes(word(i))) masked[i + 1] = REDACTED;
      return masked;
    default:
      return masked;
  }
}
