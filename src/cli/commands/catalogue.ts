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

/** Width of the text format when stdout is not a terminal. */
export const CATALOGUE_TEXT_WIDTH = 80;

/**
 * The catalogue as plain text: one section per kind, one block per entry
 * (its name, a line of facts, its description), every line wrapped to
 * `width` columns (a word longer than a line stays whole).
 */
export function renderCatalogueText(catalogue: Catalogue = builtinCatalogue, width = CATALOGUE_TEXT_WIDTH): string {
  const lines: string[] = [catalogue.title, ''];
  const block = (title: string, facts: string[], description: string | undefined): void => {
    lines.push(`  ${title}`);
    lines.push(...wrap(facts.filter(Boolean).join(' · '), width, '    '));
    if (description) lines.push(...wrap(description, width, '    '));
  };
  const vars = Object.entries(catalogue.vars);
  const section = (title: string, entries: typeof vars): void => {
    lines.push(`${title} (${entries.length})`, '');
    for (const [constant, v] of entries) {
      block(constant, [`key ${v.name}${v.keyed ? ` [${v.keyDescription ?? 'key'}]` : ''}`, v.type, `owner ${v.owner}`, v.ttlMs === undefined ? '' : `ttl ${v.ttlMs / 1000} s`], v.description);
      lines.push('');
    }
  };
  section('Variables', vars.filter(([, v]) => !v.internal));
  section('Keys the library stores', vars.filter(([, v]) => v.internal));
  const topics = Object.entries(catalogue.topics);
  lines.push(`Topics (${topics.length})`, '');
  for (const [constant, t] of topics) {
    block(constant, [`topic ${t.name}`, `payload ${t.payload}`, `pub ${t.publishers.join(',')}`, `sub ${t.subscribers.join(',')}`], t.description);
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

/** Word-wraps `text` to `width` columns, each line starting with `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      out.push(indent + line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') out.push(indent + line);
  return out;
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
      else io.stdout.write(`${renderCatalogueText(builtinCatalogue, io.stdout.isTTY ? Math.max(40, (io.stdout as { columns?: number }).columns ?? CATALOGUE_TEXT_WIDTH) : CATALOGUE_TEXT_WIDTH)}\n`);
      done(ExitCode.OK);
    });
}
