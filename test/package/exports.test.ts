/**
 * The built package loads with `require` and with `import` on this Node, and
 * exposes the public surface. Builds first when dist/ is missing.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

describe('built package', function () {
  this.timeout(120_000);

  before(() => {
    if (!existsSync(join(root, 'dist', 'src', 'index.js'))) execFileSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  });

  it('loads with require', () => {
    const out = execFileSync(process.execPath, ['-e', "const m = require('intracom'); console.log([typeof m.RedisClient, typeof m.RedisVars, typeof m.ValidationError, m.QueryType.SYNC].join(','))"], { cwd: root }).toString().trim();
    expect(out).to.equal('function,object,function,SYNC');
  });

  it('loads with import', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', "import { RedisClient, RedisVars, Names } from 'intracom'; console.log([typeof RedisClient, typeof RedisVars, typeof Names].join(','))"], { cwd: root }).toString().trim();
    expect(out).to.equal('function,object,function');
  });

  it("lets tools read its package.json (require('intracom/package.json'))", () => {
    const out = execFileSync(process.execPath, ['-e', "console.log(require('intracom/package.json').name)"], { cwd: root }).toString().trim();
    expect(out).to.equal('intracom');
  });

  it('ships type declarations', () => {
    expect(existsSync(join(root, 'dist', 'src', 'index.d.ts'))).to.equal(true);
    expect(existsSync(join(root, 'dist', 'vars', 'index.d.ts'))).to.equal(true);
  });
});
