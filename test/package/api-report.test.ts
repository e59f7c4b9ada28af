/**
 * The public API is what docs/api-report.md says, to the declaration: a
 * change to the surface fails here until the report is regenerated
 * (`npx tsx test/package/api-report.ts`) and the diff reviewed.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as intracom from '../../src/index';
import * as vars from '../../vars/index';
import { publicDeclarationText, REPORT_FILE, renderApiReport, undocumentedPublicNames, unexportedReachableTypes } from './api-report';

describe('public API', function () {
  this.timeout(120_000);

  it('matches docs/api-report.md (regenerate with `npx tsx test/package/api-report.ts` and review the diff)', () => {
    expect(renderApiReport()).to.equal(readFileSync(REPORT_FILE, 'utf8'));
  });

  it('documents every exported name and every public member of its classes and interfaces (TSDoc shown in editors)', () => {
    expect(undocumentedPublicNames()).to.deep.equal([]);
  });

  it('leaves the internals out of the package entry points', () => {
    const internals = ['WIRE_STRUCTURES', 'QUERY_FIELDS', 'encodeFrame', 'decodeFrame', 'monotonicNs', 'createQuery', 'assertName', 'assertNamespace', 'invalidArgumentsReason', 'checkArguments', 'renderCatalogueMarkdown', 'MemoryBus', 'MemoryRoute', 'RedisRoute', 'FrameBatcher', 'describeValue'];
    for (const name of internals) {
      expect(intracom, name).to.not.have.property(name);
      expect(vars, name).to.not.have.property(name);
    }
  });

  it('exports every type of the package that a public declaration reaches (none a user meets but cannot name)', () => {
    expect(unexportedReachableTypes()).to.deep.equal([]);
  });

  it("keeps the repository's internal design documents out of the TSDoc users read", () => {
    const mentions = publicDeclarationText()
      .split('\n')
      .filter((line) => /seeds\/\d|\bthe seed\b(?! node)|seed's/i.test(line));
    expect(mentions).to.deep.equal([]);
  });

  it('lists every runtime export of the entry points in the report', () => {
    const report = readFileSync(REPORT_FILE, 'utf8');
    for (const name of Object.keys(intracom)) expect(report, name).to.include(`### ${name}\n`);
  });
});
