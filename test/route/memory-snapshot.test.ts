/**
 * The memory route's snapshot (seeds/000: "the memory queue is stored on
 * shutdown to be restored on restart"), and what only the memory route does.
 * A "restart" is a new MemoryBus on the same file: nothing but the file
 * carries state across it, as nothing but the file survives a process.
 */
import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Packr } from 'msgpackr';
import { RedisClient } from '../../src/client/RedisClient';
import { SnapshotError, ValidationError } from '../../src/errors/index';
import { MemoryBus } from '../../src/route/MemoryBus';
import { MemoryRoute } from '../../src/route/MemoryRoute';
import { rejection } from '../support/async';
import { routeOptions } from './harnesses';


async function connected(bus: MemoryBus, snapshotFile?: string): Promise<MemoryRoute> {
  const route = new MemoryRoute(routeOptions(), bus, snapshotFile === undefined ? {} : { snapshotFile });
  await route.connect();
  return route;
}


describe('memory route snapshot', function () {
  this.timeout(10_000);
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'intracom-snapshot-'));
    file = join(dir, 'queues.snapshot');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the queues when the last route closes, and a restarted bus delivers undelivered entries and gives pending ones back', async () => {
    const before = new MemoryBus({ snapshotFile: file });
    const [producer, worker] = [await connected(before), await connected(before)];
    await producer.streamEnsureGroup('work', 'workers', '0');
    await producer.streamEnsureGroup('work', 'auditors', '$');
    const binary = Buffer.from([0, 255, 1, 254, 0x80]);
    const added = [await producer.streamAdd('work', binary), await producer.streamAdd('work', Buffer.from('second')), await producer.streamAdd('work', Buffer.from('third'))];
    const taken = await worker.streamRead('work', 'workers', 'worker-1', '>', 1, 0);
    expect(taken.map((entry) => entry.id)).to.deep.equal([added[0]]);
    await worker.streamRead('work', 'workers', 'worker-1', 'own-pending', 10, 0); // a second delivery, to see counts survive
    await worker.streamAck('work', 'workers', [added[1]], { delete: false }); // not pending: acknowledging an undelivered id changes nothing
    await worker.streamRead('work', 'auditors', 'auditor', '>', 10, 0);
    await worker.streamAck('work', 'auditors', [added[2]], { delete: false, done: { key: 'done.bucket', ids: ['q3'], ttlMs: 60_000 } });

    await producer.close();
    expect(existsSync(file), 'not written while a route is open').to.equal(false);
    await worker.close();
    expect(existsSync(file)).to.equal(true);
    expect(readdirSync(dir), 'no temporary file left behind').to.deep.equal(['queues.snapshot']);

    const after = new MemoryBus({ snapshotFile: file });
    const restarted = await connected(after);
    expect(await restarted.streamInfo('work')).to.deep.equal({
      length: 3,
      firstId: added[0],
      groups: [
        { name: 'auditors', pending: 2, lag: 0, lastDeliveredId: added[2], oldestPendingId: added[0] },
        { name: 'workers', pending: 1, lag: 2, lastDeliveredId: added[0], oldestPendingId: added[0] },
      ],
    });
    const own = await restarted.streamRead('work', 'workers', 'worker-1', 'own-pending', 10, 0);
    expect(own.map((entry) => [entry.id, entry.deliveries])).to.deep.equal([[added[0], 3]]);
    expect(Buffer.isBuffer(own[0].payload)).to.equal(true);
    expect([...own[0].payload]).to.deep.equal([...binary]);
    const fresh = await restarted.streamRead('work', 'workers', 'worker-2', '>', 10, 0);
    expect(fresh.map((entry) => entry.payload.toString())).to.deep.equal(['second', 'third']);
    expect(await restarted.claimQueries(['done.bucket'], 'claims', 'worker-1', 1000, [{ entryId: added[0], queryIds: ['q3', 'q4'] }])).to.deep.equal(['done', 'claimed']);
    // ids keep increasing after the restart, as Redis keeps a stream's last id
    const next = await restarted.streamAdd('work', Buffer.from('fourth'));
    const [[nextMs, nextSeq], [lastMs, lastSeq]] = [next, added[2]].map((id) => id.split('-').map(Number));
    expect(nextMs > lastMs || (nextMs === lastMs && nextSeq > lastSeq)).to.equal(true);
    await restarted.close();
  });

  it('keeps delivery times, so an entry pending before the restart is claimable once idle', async () => {
    const before = new MemoryBus({ snapshotFile: file });
    const route = await connected(before);
    await route.streamEnsureGroup('jobs', 'g', '0');
    const id = await route.streamAdd('jobs', Buffer.from('job'));
    await route.streamRead('jobs', 'g', 'crashed', '>', 10, 0);
    await route.close();

    const restarted = await connected(new MemoryBus({ snapshotFile: file }));
    expect(await restarted.streamClaimIdle('jobs', 'g', 'rescuer', 60_000, 10)).to.deep.equal([]);
    await sleep(80);
    const claimed = await restarted.streamClaimIdle('jobs', 'g', 'rescuer', 50, 10);
    expect(claimed.map((entry) => [entry.id, entry.deliveries, entry.payload.toString()])).to.deep.equal([[id, 2, 'job']]);
    await restarted.close();
  });

  it('starts empty when the file does not exist', async () => {
    const bus = new MemoryBus({ snapshotFile: file });
    const route = await connected(bus);
    expect(await route.streamInfo('work')).to.deep.equal({ length: 0, firstId: null, groups: [] });
    expect(await bus.loadSnapshot(join(dir, 'absent'))).to.equal(false);
    await route.close();
    expect(existsSync(file), 'written on close, even when empty').to.equal(true);
  });

  for (const [what, bytes] of [
    ['bytes that are not msgpack', Buffer.from([0xc1, 0xc1, 0xc1])],
    ['msgpack that is not a snapshot', new Packr().pack({ hello: 'world' })],
    ['a snapshot of another version', new Packr({ useRecords: false }).pack(['intracom.memory-snapshot', 99, [], []])],
    ['a snapshot with a malformed stream', new Packr({ useRecords: false }).pack(['intracom.memory-snapshot', 1, [['s', 1, 0, [['x']], []]], []])],
    ['a truncated snapshot', Buffer.alloc(0)],
  ] as const) {
    it(`refuses ${what} with a SnapshotError on connect, and leaves the file alone`, async () => {
      writeFileSync(file, bytes);
      const bus = new MemoryBus({ snapshotFile: file });
      const route = new MemoryRoute(routeOptions(), bus);
      const error = await rejection(route.connect());
      expect(error).to.be.instanceOf(SnapshotError);
      expect((error as SnapshotError).code).to.equal('ERR_SNAPSHOT');
      expect((error as SnapshotError).file).to.equal(file);
      expect(error.message).to.include(file);
      expect(route.status).to.equal('idle');
      await route.close();
      expect(readFileSync(file)).to.deep.equal(bytes);
      // fixed (here: removed), the next connect restores nothing and works
      rmSync(file);
      await route.connect();
      expect(route.status).to.equal('ready');
      await route.close();
    });
  }

  it('saves and loads explicitly, replacing only the streams the snapshot holds', async () => {
    const source = new MemoryBus();
    const route = await connected(source);
    await route.streamEnsureGroup('a', 'g', '0');
    await route.streamAdd('a', Buffer.from('from a'));
    await source.saveSnapshot(file);
    await route.close();

    const target = new MemoryBus();
    const other = await connected(target);
    await other.streamAdd('a', Buffer.from('replaced'));
    await other.streamAdd('b', Buffer.from('kept'));
    expect(await target.loadSnapshot(file)).to.equal(true);
    expect((await other.streamRange('a', '-', '+', 10)).map((entry) => entry.payload.toString())).to.deep.equal(['from a']);
    expect((await other.streamRange('b', '-', '+', 10)).map((entry) => entry.payload.toString())).to.deep.equal(['kept']);
    expect((await other.streamRead('a', 'g', 'c', '>', 10, 0)).map((entry) => entry.payload.toString())).to.deep.equal(['from a']);
    await other.close();
  });

  it('rejects close with a SnapshotError when the file cannot be written, closing all the same', async () => {
    const bus = new MemoryBus({ snapshotFile: join(dir, 'missing-dir', 'queues.snapshot') });
    const route = await connected(bus);
    const error = await rejection(route.close());
    expect(error).to.be.instanceOf(SnapshotError);
    expect(route.status).to.equal('closed');
  });

  it('takes the file from a route option, and refuses a second file on the same bus', async () => {
    const bus = new MemoryBus();
    const route = await connected(bus, file);
    expect(bus.snapshotFile).to.equal(file);
    const error = await rejection(connected(bus, join(dir, 'other')));
    expect(error).to.be.instanceOf(ValidationError);
    await route.streamAdd('s', Buffer.from('x'));
    await route.close();
    expect(existsSync(file)).to.equal(true);
  });

  it('passes RedisClient memorySnapshotFile through to the memory route', async () => {
    const bus = new MemoryBus();
    const client = new RedisClient({ service: 'snap', route: 'memory', memoryBus: bus, memorySnapshotFile: file });
    await client.connect();
    expect(bus.snapshotFile).to.equal(file);
    await client.close();
    expect(existsSync(file)).to.equal(true);
  });
});

describe('memory route streams', () => {
  it('ends a blocked read with no entries when its route closes, and refuses reads once closed', async () => {
    const bus = new MemoryBus();
    const [producer, consumer] = [await connected(bus), await connected(bus)];
    await producer.streamEnsureGroup('s', 'g', '$');
    const reading = consumer.streamRead('s', 'g', 'c', '>', 10, 0);
    await consumer.close();
    expect(await reading).to.deep.equal([]);
    await rejection(consumer.streamRead('s', 'g', 'c', '>', 10, 0));
    // the closed reader took nothing: the next entry is still new to the group
    await producer.streamAdd('s', Buffer.from('x'));
    expect((await producer.streamInfo('s')).groups[0]).to.deep.include({ pending: 0, lag: 1 });
    await producer.close();
  });

  it('copies payloads out: a reader changing its Buffer changes nothing for the next one', async () => {
    const bus = new MemoryBus();
    const route = await connected(bus);
    await route.streamEnsureGroup('s', 'a', '0');
    await route.streamEnsureGroup('s', 'b', '0');
    await route.streamAdd('s', Buffer.from('abc'));
    const [first] = await route.streamRead('s', 'a', 'c', '>', 1, 0);
    first.payload.fill(0);
    const [second] = await route.streamRead('s', 'b', 'c', '>', 1, 0);
    expect(second.payload.toString()).to.equal('abc');
    const [again] = await route.streamRead('s', 'b', 'c', 'own-pending', 1, 0);
    again.payload.fill(0);
    const [ranged] = await route.streamRange('s', '-', '+', 1);
    expect(ranged.payload.toString()).to.equal('abc');
    ranged.payload.fill(0);
    expect((await route.streamRead('s', 'a', 'c', 'own-pending', 1, 0))[0].payload.toString()).to.equal('abc');
    await route.close();
  });

  it('stays compact and ordered through many acknowledgements with delete', async () => {
    const bus = new MemoryBus();
    const route = await connected(bus);
    await route.streamEnsureGroup('q', 'g', '0');
    for (let i = 0; i < 500; i += 1) await route.streamAdd('q', Buffer.from(String(i)));
    let seen = 0;
    for (;;) {
      const batch = await route.streamRead('q', 'g', 'c', '>', 37, 1);
      if (batch.length === 0) break;
      for (const entry of batch) {
        expect(entry.payload.toString()).to.equal(String(seen));
        seen += 1;
        await route.streamAck('q', 'g', [entry.id], { delete: true });
      }
    }
    expect(seen).to.equal(500);
    expect(await route.streamInfo('q')).to.deep.include({ length: 0, firstId: null });
    await route.close();
  });
});
