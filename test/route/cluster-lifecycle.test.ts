/**
 * A closed client on a cluster leaves nothing behind that keeps the process
 * alive. ioredis 6 arms the next round of a Cluster's periodic slot-map
 * reading when the round in flight ends, even after `disconnect()`: a client
 * closed in that moment left a ref'd timer reading the slot map of nobody
 * for good (found by the suite's leak check, 1 run in a few).
 */
import { expect } from 'chai';
import type { Cluster } from 'ioredis';
import { clusterSubscriber, openConnection } from '../../src/route/connection';
import { until } from '../support/async';
import { cluster, topologiesAvailable, type TestCluster } from '../support/redis-topologies';

const describeTopologies = topologiesAvailable && process.env.INTRACOM_TEST_TOPOLOGIES !== '0' ? describe : describe.skip;

/** What the test reads of an ioredis Cluster's slot-map reading. */
interface RefreshState {
  isRefreshing: boolean;
  slotsTimer: NodeJS.Timeout | null;
}

describeTopologies('a cluster client closed while it reads the slot map', function () {
  this.timeout(30_000);
  let c: TestCluster;
  before(async function () {
    this.timeout(120_000);
    c = await cluster();
    await c.heal();
  });

  it('stops reading it for good: no slot-map timer is left on its connections', async () => {
    // the connections a route opens on a cluster, without the route (which would connect them again once ended)
    const commands = openConnection({ cluster: c.seeds, clusterOptions: { slotsRefreshInterval: 10 } }).commands as Cluster;
    const connections = [commands, clusterSubscriber(commands)];
    const state = (connection: Cluster) => connection as unknown as RefreshState;
    try {
      await Promise.all(connections.map((connection) => connection.connect()));
      // the close (a disconnect(), as a route's close() makes) lands between a reading's answer and its end: `refresh` comes in between
      await Promise.all(connections.map((connection) => new Promise<void>((resolve) => connection.once('refresh', () => resolve(connection.disconnect())))));
      await until(() => connections.every((connection) => !state(connection).isRefreshing), 5000, 'the readings over');
      // a timer armed now would fire within 10 ms and arm the next: five rounds' time shows it
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(connections.map((connection) => state(connection).slotsTimer), 'no round armed').to.deep.equal([null, null]);
    } finally {
      for (const connection of connections) connection.disconnect();
    }
  });
});
