/**
 * The layers above the route speak to it through its contract only
 * (src/route/Route.ts, with its LockStore and StreamStore parts): no import
 * of a concrete route, of the memory bus or of the frame batcher, and no
 * reaching into a route's connections. Read from the sources, so that a
 * shortcut shows up as a failing test rather than in a review.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..');
const UPPER_LAYERS = ['src/queues', 'src/rpc', 'src/mutex', 'src/cli'];
/** What only the route layer (and RedisClient, which builds the route it owns) may name. */
const FORBIDDEN = [/from '\.\.\/(\.\.\/)?route\/(RedisRoute|MemoryRoute|MemoryBus|FrameBatcher|FramedRoute|MemoryStreams|RedisStreamStore)'/, /\.publisher\b/, /\.subscriber\b/, /\.bus\b/];

function files(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the route contract', () => {
  it('is all that queues, rpc, mutex and the CLI use of a route', () => {
    const offences: string[] = [];
    for (const layer of UPPER_LAYERS) {
      for (const file of files(join(root, layer))) {
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, index) => {
            // a type-only import of the connection option's type names no behaviour
            if (/^import type \{ RedisConnection \} from/.test(line)) return;
            for (const pattern of FORBIDDEN) if (pattern.test(line)) offences.push(`${relative(root, file)}:${index + 1}: ${line.trim()}`);
          });
      }
    }
    expect(offences).to.deep.equal([]);
  });
});
