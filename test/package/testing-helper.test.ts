/**
 * `intracom/testing`'s MemoryDeployment hands its bus on through the options
 * spread and through nothing else: no public name leads to the live bus
 * (which would let a test poke at internals it cannot rely on), and two
 * deployments share nothing.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { MemoryDeployment } from '../../src/testing/index';

describe('MemoryDeployment', () => {
  it('exposes only `route: "memory"`: its bus is reachable by no public name', () => {
    const deployment = new MemoryDeployment();
    expect(Object.keys(deployment.options)).to.deep.equal(['route']);
    expect((deployment.options as Record<string, unknown>).memoryBus).to.equal(undefined);
    expect(JSON.stringify(deployment.options)).to.equal('{"route":"memory"}');
    expect(Object.isFrozen(deployment.options)).to.equal(true);
  });

  it('clients of one deployment share a bus through the spread; another deployment sees none of it', async () => {
    const one = new MemoryDeployment();
    const other = new MemoryDeployment();
    const a = new RedisClient({ service: 'dep-a', ...one.options });
    const b = new RedisClient({ service: 'dep-b', ...one.options });
    const c = new RedisClient({ service: 'dep-c', ...other.options });
    await Promise.all([a.connect(), b.connect(), c.connect()]);
    try {
      expect((await b.instances('dep-a')).length).to.equal(1);
      expect((await c.instances('dep-a')).length).to.equal(0);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});
