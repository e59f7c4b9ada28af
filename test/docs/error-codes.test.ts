/**
 * client.md's table of error codes names every error class the package
 * exports, each with the code its instances carry.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as intracom from '../../src/index';

describe("client.md's error codes", () => {
  it('lists every exported error class with its code', () => {
    const page = readFileSync(join(__dirname, '..', '..', 'docs', 'client.md'), 'utf8');
    const classes = Object.entries(intracom).filter(([name, value]) => typeof value === 'function' && value.prototype instanceof intracom.IntracomError && name !== 'IntracomError');
    expect(classes.length).to.be.greaterThan(15);
    for (const [name] of classes) {
      // ValidationError lives in vars/ (the catalogue throws it too); src/errors re-exports it
      const sources = [join('src', 'errors', `${name}.ts`), join('vars', `${name}.ts`)].filter((file) => existsSync(join(__dirname, '..', '..', file))).map((file) => readFileSync(join(__dirname, '..', '..', file), 'utf8'));
      const code = sources.map((source) => /'(ERR_[A-Z_]+)'/.exec(source)?.[1]).find(Boolean);
      expect(code, name).to.be.a('string');
      expect(page, `${name} ${code}`).to.match(new RegExp(`\\| \`${code}\` \\| \`${name}\``));
    }
  });
});
