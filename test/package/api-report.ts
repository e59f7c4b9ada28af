/**
 * The API report: the public surface of the package as its built type
 * declarations show it, one section per entry point (`intracom`,
 * `intracom/vars`, `intracom/testing`), each exported name with its
 * declaration (comments and private members left out). docs/api-report.md
 * holds the reviewed copy; api-report.test.ts fails when they differ, so a
 * change to the public API shows as a diff in review.
 *
 *   npx tsx test/package/api-report.ts          # rewrites docs/api-report.md
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = join(__dirname, '..', '..');
export const REPORT_FILE = join(root, 'docs', 'api-report.md');

/** Entry points as package.json's `exports` names them, and their source files. */
const ENTRY_POINTS: ReadonlyArray<[string, string]> = [
  ['intracom', 'src/index.ts'],
  ['intracom/vars', 'vars/index.ts'],
  ['intracom/testing', 'src/testing/index.ts'],
];

/** Emits the declarations of the entry points (as `npm run build` does, stripInternal included) into a scratch directory. */
function emitDeclarations(): string {
  const out = mkdtempSync(join(tmpdir(), 'intracom-api-'));
  const config = {
    extends: join(root, 'tsconfig.json'),
    compilerOptions: { outDir: out, rootDir: root, emitDeclarationOnly: true, declaration: true, sourceMap: false, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
    files: ENTRY_POINTS.map(([, file]) => join(root, file)),
    include: [],
  };
  const configFile = join(out, 'tsconfig.json');
  writeFileSync(configFile, JSON.stringify(config));
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', configFile], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

/** A declaration file cut into top-level statements, comments removed. */
function statements(file: string): string[] {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const result: string[] = [];
  let current = '';
  let depth = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '' && depth === 0 && current === '') continue;
    if (/^\s*(private|#private)\b/.test(line) && depth === 1) continue;
    if (line.trim() === '') continue;
    current += (current === '' ? '' : '\n') + line.replace(/\s+$/, '');
    for (const char of line) {
      if (char === '{' || char === '(' || char === '[') depth += 1;
      else if (char === '}' || char === ')' || char === ']') depth -= 1;
    }
    if (depth === 0 && (/[;}]$/.test(line.trim()) || /^export \{\s*\};?$/.test(line.trim()))) {
      result.push(current);
      current = '';
    }
  }
  if (current !== '') result.push(current);
  return result;
}

interface Module {
  /** Declarations by local name. */
  declared: Map<string, string>;
  /** Exported name -> [module file, name there] (for re-exports) or [this file, local name]. */
  exported: Map<string, [string, string]>;
  /** `export *` sources. */
  star: string[];
}

const DECLARATION = /^(?:export )?(?:declare )?(?:abstract )?(?:class|interface|type|function|const|let|enum|namespace) ([A-Za-z_$][\w$]*)/;

function load(file: string, cache: Map<string, Module>): Module {
  let module = cache.get(file);
  if (module !== undefined) return module;
  module = { declared: new Map(), exported: new Map(), star: [] };
  cache.set(file, module);
  const target = (spec: string) => resolve(dirname(file), spec.replace(/\.js$/, '')) + '.d.ts';
  for (const statement of statements(file)) {
    const reexport = /^export (?:type )?\{([^}]*)\}(?: from '([^']+)')?;$/s.exec(statement);
    if (reexport) {
      for (const item of reexport[1].split(',').map((s) => s.trim().replace(/^type /, '')).filter(Boolean)) {
        const [name, alias] = item.split(/\s+as\s+/);
        module.exported.set(alias ?? name, [reexport[2] ? target(reexport[2]) : file, name]);
      }
      continue;
    }
    const star = /^export \* from '([^']+)';$/.exec(statement);
    if (star) {
      module.star.push(target(star[1]));
      continue;
    }
    const declared = DECLARATION.exec(statement);
    if (declared) {
      const previous = module.declared.get(declared[1]);
      module.declared.set(declared[1], previous === undefined ? statement : `${previous}\n${statement}`);
      if (statement.startsWith('export ')) module.exported.set(declared[1], [file, declared[1]]);
    }
  }
  return module;
}

function resolveName(file: string, name: string, cache: Map<string, Module>): string | undefined {
  const module = load(file, cache);
  const link = module.exported.get(name);
  if (link !== undefined) {
    const [where, local] = link;
    if (where === file) return module.declared.get(local);
    return resolveName(where, local, cache) ?? load(where, cache).declared.get(local);
  }
  for (const source of module.star) {
    const found = resolveName(source, name, cache);
    if (found !== undefined) return found;
  }
  return undefined;
}

function exportedNames(file: string, cache: Map<string, Module>): string[] {
  const module = load(file, cache);
  const names = new Set(module.exported.keys());
  for (const source of module.star) for (const name of exportedNames(source, cache)) names.add(name);
  return [...names].sort((a, b) => a.localeCompare(b));
}

/** The report's text, from declarations freshly emitted from the sources. */
export function renderApiReport(): string {
  const out = emitDeclarations();
  try {
    const cache = new Map<string, Module>();
    const lines = [
      '# API report',
      '',
      'The public surface of the package, generated from its type declarations by',
      '`npx tsx test/package/api-report.ts` (comments and private members left out).',
      'test/package/api-report.test.ts fails when this file and the sources differ:',
      'a change here is a change of the public API, to be reviewed as such.',
      '',
    ];
    for (const [entry, source] of ENTRY_POINTS) {
      const file = join(out, source.replace(/\.ts$/, '.d.ts'));
      lines.push(`## ${entry}`, '');
      for (const name of exportedNames(file, cache)) {
        const declaration = resolveName(file, name, cache) ?? `(declaration of ${name} not found)`;
        lines.push(`### ${name}`, '', '```ts', declaration.replace(/^export (declare )?/gm, '').trim(), '```', '');
      }
    }
    return `${lines.join('\n').trimEnd()}\n`;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Every top-level declaration of every emitted declaration file, by name (a name declared in two files keeps both). */
function allDeclarations(dir: string, cache: Map<string, Module>): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    if (!entry.endsWith('.d.ts')) continue;
    for (const [name, declaration] of load(join(dir, entry), cache).declared) found.set(name, [...(found.get(name) ?? []), declaration]);
  }
  return found;
}

/** The names a declaration refers to (string literals left out, so that `'redis'` is not taken for a name). */
function referencedNames(declaration: string): Set<string> {
  return new Set(declaration.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`/g, '').match(/[A-Za-z_$][\w$]*/g) ?? []);
}

/**
 * Types of the package that the public declarations reach but no entry
 * point exports, each with the exported name through which it is reached: a
 * user can meet them (in an error, an editor's hover, a declaration they
 * must write) but cannot name them. Followed transitively through the
 * unexported ones. Empty when the surface is closed.
 */
export function unexportedReachableTypes(): Array<{ name: string; reachedFrom: string }> {
  const out = emitDeclarations();
  try {
    const cache = new Map<string, Module>();
    const exported = new Set<string>();
    const queue: Array<[string, string]> = [];
    for (const [, source] of ENTRY_POINTS) {
      const file = join(out, source.replace(/\.ts$/, '.d.ts'));
      for (const name of exportedNames(file, cache)) {
        exported.add(name);
        const declaration = resolveName(file, name, cache);
        if (declaration !== undefined) queue.push([name, declaration]);
      }
    }
    const declared = allDeclarations(out, cache);
    const found = new Map<string, string>();
    while (queue.length > 0) {
      const [from, declaration] = queue.shift() as [string, string];
      for (const name of referencedNames(declaration)) {
        if (exported.has(name) || found.has(name) || !declared.has(name)) continue;
        found.set(name, from);
        for (const text of declared.get(name) ?? []) queue.push([name, text]);
      }
    }
    return [...found].map(([name, reachedFrom]) => ({ name, reachedFrom })).sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The text of every emitted declaration file of the entry points (what a user's editor shows, TSDoc included). */
export function publicDeclarationText(): string {
  const out = emitDeclarations();
  try {
    return readdirSync(out, { recursive: true, encoding: 'utf8' })
      .filter((entry) => entry.endsWith('.d.ts'))
      .map((entry) => readFileSync(join(out, entry), 'utf8'))
      .join('\n');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}


/** Where an exported name is declared: [declaration file, local name], or undefined. */
function declarationSite(file: string, name: string, cache: Map<string, Module>): [string, string] | undefined {
  const module = load(file, cache);
  const link = module.exported.get(name);
  if (link !== undefined) {
    const [where, local] = link;
    if (where === file) return module.declared.has(local) ? [file, local] : undefined;
    return declarationSite(where, local, cache) ?? (load(where, cache).declared.has(local) ? [where, local] : undefined);
  }
  for (const source of module.star) {
    const found = declarationSite(source, name, cache);
    if (found !== undefined) return found;
  }
  return undefined;
}

const MEMBER = /^\s*(?:readonly |static |abstract |get |set |async )*([A-Za-z_$][\w$]*)\??\s*[(:<]/;

/**
 * Which top-level declarations of a declaration file, and which members of
 * its classes and interfaces (`Name.member`), carry a TSDoc comment: true
 * when one of its declarations (overloads, a getter and its setter) does.
 */
function docCoverage(file: string): Map<string, boolean> {
  const coverage = new Map<string, boolean>();
  const note = (key: string, documented: boolean) => coverage.set(key, (coverage.get(key) ?? false) || documented);
  let inComment = false;
  let docComment = false;
  let pendingDoc = false;
  let depth = 0;
  let owner: string | undefined;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (inComment) {
      if (trimmed.includes('*/')) {
        inComment = false;
        pendingDoc = docComment;
      }
      continue;
    }
    if (trimmed.startsWith('/*')) {
      docComment = trimmed.startsWith('/**');
      if (trimmed.includes('*/')) pendingDoc = docComment;
      else inComment = true;
      continue;
    }
    if (trimmed === '' || trimmed.startsWith('//')) continue;
    if (depth === 0) {
      const declared = DECLARATION.exec(trimmed);
      if (declared) {
        note(declared[1], pendingDoc);
        owner = /^(?:export )?(?:declare )?(?:abstract )?(?:class|interface) /.test(trimmed) ? declared[1] : undefined;
      }
    } else if (depth === 1 && owner !== undefined && !/^(private|#private|protected)\b/.test(trimmed) && !trimmed.startsWith('constructor(')) {
      const member = MEMBER.exec(line);
      if (member && !member[1].startsWith('__')) note(`${owner}.${member[1]}`, pendingDoc);
    }
    pendingDoc = false;
    for (const char of line) {
      if (char === '{' || char === '(' || char === '[') depth += 1;
      else if (char === '}' || char === ')' || char === ']') depth -= 1;
    }
  }
  return coverage;
}

/**
 * Exported names, and public members of exported classes and interfaces
 * (`Name.member`), that have no TSDoc in the emitted declarations: what an
 * editor shows a user is empty for them. Members tagged `@internal` are not
 * emitted, so not counted.
 */
export function undocumentedPublicNames(): string[] {
  const out = emitDeclarations();
  try {
    const cache = new Map<string, Module>();
    const coverage = new Map<string, Map<string, boolean>>();
    const missing = new Set<string>();
    for (const [, source] of ENTRY_POINTS) {
      const file = join(out, source.replace(/\.ts$/, '.d.ts'));
      for (const name of exportedNames(file, cache)) {
        const site = declarationSite(file, name, cache);
        if (site === undefined) continue;
        const [where, local] = site;
        let documented = coverage.get(where);
        if (documented === undefined) coverage.set(where, (documented = docCoverage(where)));
        if (documented.get(local) === false) missing.add(name);
        for (const [key, has] of documented) if (!has && key.startsWith(`${local}.`)) missing.add(`${name}${key.slice(local.length)}`);
      }
    }
    return [...missing].sort((a, b) => a.localeCompare(b));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (require.main === module && process.argv[2] === '--undocumented') {
  process.stdout.write(`${undocumentedPublicNames().join('\n')}\n`);
} else if (require.main === module && process.argv[2] === '--reachable') {
  process.stdout.write(`${JSON.stringify(unexportedReachableTypes(), null, 1)}\n`);
} else if (require.main === module) {
  writeFileSync(REPORT_FILE, renderApiReport());
  process.stdout.write(`wrote ${REPORT_FILE}\n`);
}
