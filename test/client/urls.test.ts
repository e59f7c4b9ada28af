/**
 * A Redis connection option is checked before anything connects: a bad URL
 * or bad ioredis options are a ValidationError naming the option and the
 * value (the password hidden), never ioredis's raw TypeError or a URL read
 * as something else. The same check serves RedisClient (and so
 * RedisRPCClient) and RedisMutex.
 */
import { expect } from 'chai';
import { RedisClient } from '../../src/client/RedisClient';
import { ValidationError } from '../../src/errors/index';
import { RedisMutex } from '../../src/mutex/RedisMutex';
import { RedisRPCClient } from '../../src/rpc/RedisRPCClient';

const refused: Array<[unknown, RegExp]> = [
  ['redis://127.0.0.1:99999', /^redis must name a port from 1 to 65535 \(port "99999"\); received "redis:\/\/127.0.0.1:99999"$/],
  ['redis://127.0.0.1:0', /port from 1 to 65535.*received "redis:\/\/127.0.0.1:0"/],
  ['redis://127.0.0.1:port', /port from 1 to 65535.*"port"/],
  ['http://127.0.0.1:6379', /^redis must be a URL starting redis:\/\/ or rediss:\/\/ .*received "http:\/\/127.0.0.1:6379"$/],
  ['https://redis.example.com', /URL starting redis:\/\/ or rediss:\/\/.*"https:\/\/redis.example.com"/],
  ['127.0.0.1:6379', /URL starting redis:\/\/ or rediss:\/\/.*"127.0.0.1:6379"/],
  ['', /URL starting redis:\/\//],
  ['redis://host/users', /database number.*"\/users"/],
  ['redis://ops:s3cret@127.0.0.1:70000', /received "redis:\/\/ops:\*\*\*@127.0.0.1:70000"$/],
  [{ port: 99999 }, /^redis.port must be an integer from 1 to 65535; received 99999$/],
  [{ port: '6379' }, /^redis.port must be an integer from 1 to 65535; received "6379"$/],
  [{ host: 42 }, /^redis.host must be a string; received 42$/],
  [{ db: -1 }, /^redis.db must be a non-negative integer; received -1$/],
  [6379, /^redis must be a URL.*ioredis options.*received 6379$/],
  // ioredis would make every query key an option with a string value, and drop those it does not know
  ['redis://127.0.0.1:6390?foo=bar', /^redis: query parameter "foo" is not supported \(this URL takes only \?db=, \?family=, \?username=, \?password=, \?connectionName=\); received "redis:\/\/127.0.0.1:6390\?foo=bar"$/],
  ['redis://127.0.0.1:6390?enableOfflineQueue=false', /query parameter "enableOfflineQueue" is not supported/],
  ['redis://127.0.0.1:6390?keyPrefix=app:', /query parameter "keyPrefix" is not supported/],
  ['redis://127.0.0.1:6390?password=s3cret&role=slave', /query parameter "role" is not supported.*received "redis:\/\/127.0.0.1:6390\?password=\*\*\*&role=slave"$/],
  ['redis://127.0.0.1:6390?db=x', /must give \?db= a database number \(db "x"\)/],
  ['redis://127.0.0.1:6390/1?db=2', /names two databases \(path "\/1", db "2"\)/],
  ['redis://127.0.0.1:6390?family=5', /must give \?family= 4 or 6/],
  ['redis+cluster://127.0.0.1:6390?foo=bar', /^redis URL: query parameter "foo" is not supported \(this URL takes only \?db=\); received "redis\+cluster:\/\/127.0.0.1:6390\?foo=bar"$/],
  [{ cluster: ['redis://127.0.0.1:6390?foo=bar'] }, /^redis\.cluster\[0\]: query parameter "foo" is not supported/],
  ['redis+sentinel://127.0.0.1:26379/mymaster?role=slave', /^redis URL: query parameter "role" is not supported \(this URL takes only \?sentinelPassword=\)/],
  ['redis+sentinel://127.0.0.1:26379/mymaster?sentinelPassword=s3cret&db=2', /query parameter "db" is not supported.*sentinelPassword=\*\*\*&db=2"$/],
  // credentials after the first host would be read as `h1,u` and `s3cret`
  ['redis+cluster://127.0.0.1:6390,u:s3cret@127.0.0.1:6391', /^redis has credentials after its first host .*: write them once, before the hosts \(redis\+cluster:\/\/user:password@host1:port1,host2:port2\)$/],
];

const accepted: unknown[] = ['redis://127.0.0.1:6390', 'rediss://users-svc:secret@redis.internal:6380', 'redis://127.0.0.1', 'redis://[::1]:6390/2', 'REDIS://127.0.0.1:6390/', 'redis://127.0.0.1:6390/2?db=2&family=4&connectionName=app', 'redis://127.0.0.1:6390?username=u&password=p', 'redis+cluster://127.0.0.1:6390?db=0', 'redis+sentinel://127.0.0.1:26379/mymaster/1?sentinelPassword=p', { host: '127.0.0.1', port: 6390, db: 1 }];

describe('Redis connection options', () => {
  for (const [value, message] of refused) {
    it(`refuses ${JSON.stringify(value)} with a ValidationError naming the option and the value`, () => {
      for (const make of [() => new RedisClient({ service: 's', redis: value as string }), () => new RedisRPCClient({ service: 's', redis: value as string }), () => new RedisMutex({ redis: value as string })]) {
        expect(make).to.throw(ValidationError).with.property('message').that.matches(message).and.not.contains('s3cret');
      }
    });
  }

  it('accepts redis:// and rediss:// URLs with user, password, IPv6 host, port and database, and ioredis options', async () => {
    for (const value of accepted) {
      const client = new RedisClient({ service: 's', redis: value as string });
      expect(client.route.kind).to.equal('redis');
      await client.close();
      const mutex = new RedisMutex({ redis: value as string });
      await mutex.close();
    }
  });
});
