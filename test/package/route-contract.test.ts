/**
 * The layers above the route speak to it through its contract only
 * (src/route/Route.ts, with its StreamStore part and its `medium`): no test
 * for a route class, no value import of a concrete route, of the memory bus
 * or of the frame batcher (a type import names no behaviour), and no reaching
 * into a route's connections. Read from the sources, so that a
 * shortcut shows up as a failing test rather than in a review.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..');
const UPPER_LAYERS = ['src/queues', 'src/rpc', 'src/mutex', 'src/cli'];
/** What only the route layer (and RedisClient, which builds the route it owns) may name. */
const FORBIDDEN = [
  /^import \{[^}]*\} from '\.\.\/(\.\.\/)?route\/(RedisRoute|MemoryRoute|MemoryBus|FrameBatcher|FramedRoute|MemoryStreams|RedisStreamStore)'/,
  /instanceof (RedisRoute|MemoryRoute)\b/,
  /route\.(publisher|subscriber|bus|batcher|table)\b/,
];

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
            for (const pattern of FORBIDDEN) if (pattern.test(line)) offences.push(`${relative(root, file)}:${index + 1}: ${line.trim()}`);
          });
      }
    }
    expect(offences).to.deep.equal([]);
  });
});
