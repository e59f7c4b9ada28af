/**
 * The public API is what docs/api-report.md says, to the declaration: a
 * change to the surface fails here until the report is regenerated
 * (`npx tsx test/package/api-report.ts`) and the diff reviewed.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as intracom from '../../src/index';
import * as vars from '../../vars/index';
import { REPORT_FILE, renderApiReport } from './api-report';

describe('public API', function () {
  this.timeout(120_000);

  it('matches docs/api-report.md (regenerate with `npx tsx test/package/api-report.ts` and review the diff)', () => {
    expect(renderApiReport()).to.equal(readFileSync(REPORT_FILE, 'utf8'));
  });

  it('leaves the internals out of the package entry points', () => {
    const internals = ['WIRE_STRUCTURES', 'QUERY_FIELDS', 'encodeFrame', 'decodeFrame', 'monotonicNs', 'createQuery', 'assertName', 'assertNamespace', 'invalidArgumentsReason', 'checkArguments', 'renderCatalogueMarkdown', 'MemoryBus', 'MemoryRoute', 'RedisRoute', 'FrameBatcher', 'describeValue'];
    for (const name of internals) {
      expect(intracom, name).to.not.have.property(name);
      expect(vars, name).to.not.have.property(name);
    }
  });

  it('lists every runtime export of the entry points in the report', () => {
    const report = readFileSync(REPORT_FILE, 'utf8');
    for (const name of Object.keys(intracom)) expect(report, name).to.include(`### ${name}\n`);
  });
});
