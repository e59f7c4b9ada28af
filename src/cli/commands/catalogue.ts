/**
 * `intracom catalogue [--format text|markdown|json]`: the built-in catalogue
 * (every variable, library key and topic) as text, Markdown (the page of
 * docs/catalogue.md) or JSON. Needs no Redis.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { builtinCatalogue } from '../../../vars/RedisVars';
import { renderCatalogueMarkdown } from '../../../vars/render';
import type { Catalogue } from '../../../vars/types';
import { ExitCode, type CliIO } from '../context';

/** The formats `catalogue` prints. */
export const CATALOGUE_FORMATS = ['text', 'markdown', 'json'] as const;

/** The catalogue as aligned plain text: one section per kind, one line per entry. */
export function renderCatalogueText(catalogue: Catalogue = builtinCatalogue): string {
  const lines: string[] = [catalogue.title, ''];
  const section = (title: string, rows: string[][]): void => {
    lines.push(`${title} (${rows.length})`);
    const widths = rows.reduce((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), [] as number[]);
    for (const row of rows) lines.push(`  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}`.trimEnd());
    lines.push('');
  };
  const vars = Object.entries(catalogue.vars);
  const varRow = ([constant, v]: [string, (typeof vars)[number][1]]): string[] => [
    constant,
    v.name + (v.keyed ? ` [${v.keyDescription ?? 'key'}]` : ''),
    v.type,
    `owner ${v.owner}`,
    v.ttlMs === undefined ? '' : `ttl ${v.ttlMs / 1000} s`,
    v.description,
  ];
  section('Variables', vars.filter(([, v]) => !v.internal).map(varRow));
  section('Keys the library stores', vars.filter(([, v]) => v.internal).map(varRow));
  section(
    'Topics',
    Object.entries(catalogue.topics).map(([constant, t]) => [constant, t.name, t.payload, `pub ${t.publishers.join(',')}`, `sub ${t.subscribers.join(',')}`, t.description ?? '']),
  );
  return lines.join('\n');
}

/** Registers the command. */
export function registerCatalogue(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('catalogue')
    .description('print the catalogue of variables, library keys and topics (needs no Redis)')
    .addOption(new Option('-f, --format <format>', 'output format').choices(CATALOGUE_FORMATS).default('text'))
    .action((options: { format: (typeof CATALOGUE_FORMATS)[number] }) => {
      if (options.format === 'json') io.stdout.write(`${JSON.stringify(builtinCatalogue, null, 2)}\n`);
      else if (options.format === 'markdown') io.stdout.write(renderCatalogueMarkdown(builtinCatalogue));
      else io.stdout.write(`${renderCatalogueText(builtinCatalogue)}\n`);
      done(ExitCode.OK);
    });
}
