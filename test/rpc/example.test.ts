/** docs/examples/rpc.ts tells its story on both routes (test/docs/examples.test.ts also runs it as a program). */
import { expect } from 'chai';
import { main } from '../../docs/examples/rpc';
import { useRedis } from '../support/redis-server';

describe('docs/examples/rpc.ts', function () {
  this.timeout(20_000);
  const redis = useRedis();

  for (const route of ['memory', 'redis'] as const) {
    it(`runs on the ${route} route`, async () => {
      const transcript = await main(route === 'redis' ? redis().url : undefined);
      expect(transcript).to.include.members([
        'web: update_status -> true',
        'web: online_users -> ["u-1"]',
        'web: users exposes explode, online_users, slow_report, update_status',
        'web: NoHandlerError (4 functions exist)',
        'web: RemoteError Error E_DB: database unavailable',
        'web: TimeoutError after 200 ms',
      ]);
    });
  }
});
