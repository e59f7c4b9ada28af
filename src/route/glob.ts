/**
 * Redis's glob-style pattern matching (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), as
 * PSUBSCRIBE applies it, compiled to a RegExp so the memory route matches
 * exactly what Redis would.
 */
export function globToRegExp(pattern: string): RegExp {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '*') source += '[\\s\\S]*';
    else if (char === '?') source += '[\\s\\S]';
    else if (char === '\\' && i + 1 < pattern.length) source += escape(pattern[++i]);
    else if (char === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        source += escape(char);
        continue;
      }
      let body = pattern.slice(i + 1, close);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      const parts = body.replace(/\\(.)/g, '$1').split('');
      let set = '';
      for (let j = 0; j < parts.length; j++) {
        if (parts[j + 1] === '-' && j + 2 < parts.length) {
          set += `${escape(parts[j])}-${escape(parts[j + 2])}`;
          j += 2;
        } else set += escape(parts[j]);
      }
      source += `[${negate ? '^' : ''}${set}]`;
      i = close;
    } else source += escape(char);
  }
  return new RegExp(`${source}$`);
}

function escape(char: string): string {
  return char.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
