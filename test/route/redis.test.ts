import { routeConformance } from './conformance';
import { targetHarness } from './harnesses';
import { streamConformance } from './stream-conformance';
import { testTargets } from '../support/redis-targets';

for (const kind of testTargets()) {
  routeConformance(`redis${kind.suffix}`, () => targetHarness(kind));
  streamConformance(`redis${kind.suffix}`, () => targetHarness(kind));
}
